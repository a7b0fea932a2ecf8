#!/usr/bin/env bash
# Runs the whole test suite against real SoftHSM2, redb, openssl, pkcs11-tool, Go and
# pkilint (installed and upgraded to the current Debian versions by ensure_test_deps).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_test_deps
cargo fmt --all -- --check
cargo test --workspace --locked --all-targets
# Bounded fuzzing of every parser of untrusted bytes: 45 s per target, two at a time
# (about 6.5 minutes on 2 cores from a clean clone, 4 of them building the targets).
bash deploy/fuzz.sh
