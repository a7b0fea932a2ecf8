#!/usr/bin/env bash
# Runs the whole test suite against real SoftHSM2, redb, openssl and pkcs11-tool.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_deps
cargo fmt --all -- --check
cargo test --workspace --locked --all-targets
