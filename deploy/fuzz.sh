#!/usr/bin/env bash
# Bounded fuzzing of every parser of untrusted bytes (the CI fuzz stage; deploy/test.sh runs
# it after the cargo tests). Builds the cargo-fuzz targets of fuzz/ directly, as cargo-fuzz
# would (sanitizer-coverage instrumentation, `--cfg fuzzing`, debug assertions and overflow
# checks, release optimisation) but without AddressSanitizer and without installing
# cargo-fuzz, so a stable toolchain on a fresh machine suffices. Then runs each target for
# CREDMINT_FUZZ_SECONDS (default 45) on its committed seeds (fuzz/seeds/<target>/) and past
# crash inputs (fuzz/regressions/<target>/), CREDMINT_FUZZ_JOBS (default 2) targets at a
# time, and prints the executions per target.
#
# A crash, panic, timeout or out-of-memory fails the script. Its input is printed in base64:
# decode it into fuzz/regressions/<target>/, fix the bug, and `cargo test --test
# fuzz_replay` replays it on every test run from then on.
#
#   bash deploy/fuzz.sh                 # all targets
#   bash deploy/fuzz.sh csr bundle      # some targets
#   CREDMINT_FUZZ_SECONDS=3600 bash deploy/fuzz.sh bundle   # a longer run
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(csr ocsp_request record signed_note bundle workload_api_stream acme_jws receipt)
SECONDS_PER_TARGET="${CREDMINT_FUZZ_SECONDS:-45}"
JOBS="${CREDMINT_FUZZ_JOBS:-2}"
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "credmint fuzz: no target $t" >&2; exit 2; }
done

# The host triple is given explicitly so RUSTFLAGS reach only the target code, never
# build scripts and proc macros (what cargo-fuzz does too).
HOST="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
build_start=$(date +%s)
# The main workspace's lock pins every shared crate; cargo only adds the fuzz-only ones
# (libfuzzer-sys, arbitrary), pinned exactly in fuzz/Cargo.toml.
cp Cargo.lock fuzz/Cargo.lock
(cd fuzz && cargo build --release --target "$HOST" --bins)
BIN="fuzz/target/$HOST/release"
echo "credmint fuzz: built in $(($(date +%s) - build_start)) s" >&2

WORK="fuzz/target/fuzz-run"
rm -rf "$WORK"
mkdir -p "$WORK"

# One target: a scratch corpus seeded from the committed one (new inputs go there, never
# into the repository), crash artifacts under $WORK/<target>/.
fuzz_one() {
    local t="$1" dir="$WORK/$1"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp fuzz/seeds/"$t"/* "$dir/corpus/"
    local extra=()
    [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
    local rc=0
    "$BIN/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        "$dir/corpus" "${extra[@]}" >"$dir/log" 2>&1 || rc=$?
    echo "$rc" >"$dir/status"
}

fuzz_start=$(date +%s)
running=0
for t in "${TARGETS[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait

failed=0
passed=0
total=0
for t in "${TARGETS[@]}"; do
    status=$(cat "$WORK/$t/status")
    log="$WORK/$t/log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    seeds=$(find "fuzz/seeds/$t" -type f | wc -l)
    corpus=$(find "$WORK/$t/corpus" -type f | wc -l)
    total=$((total + ${execs:-0}))
    if [ "$status" -eq 0 ]; then
        printf 'credmint fuzz: %-13s %10s execs in %s s (%s exec/s), corpus %s -> %s inputs\n' \
            "$t" "${execs:-?}" "$SECONDS_PER_TARGET" "${rate:-?}" "$seeds" "$corpus"
        passed=$((passed + 1))
        continue
    fi
    failed=$((failed + 1))
    echo "credmint fuzz: $t FAILED (exit $status) after ${execs:-?} execs; log tail:" >&2
    grep -v '^#[0-9]' "$log" | tail -40 >&2
    for crash in "$WORK/$t"/artifacts/*; do
        [ -f "$crash" ] || continue
        name="$(basename "$crash")"
        echo "credmint fuzz: input $name ($(wc -c <"$crash") bytes), keep it with:" >&2
        echo "  mkdir -p fuzz/regressions/$t && base64 -d >fuzz/regressions/$t/$name <<'EOF'" >&2
        base64 -w 76 "$crash" >&2
        echo "EOF" >&2
    done
done
echo "credmint fuzz: ${#TARGETS[@]} targets, $total execs, fuzzing took $(($(date +%s) - fuzz_start)) s"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
