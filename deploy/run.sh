#!/usr/bin/env bash
# Runs credmint on its embedded default (SoftHSM2 token + local redb ledger under ./data):
# installs missing prerequisites, builds, runs `init` (idempotent) and serves HTTPS.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_deps
cargo build --release --locked --bin credmint
config="${CREDMINT_CONFIG:-firmware-config/credmint.toml}"
./target/release/credmint --config "$config" init
exec ./target/release/credmint --config "$config" serve
