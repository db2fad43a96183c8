#!/usr/bin/env bash
# Short fuzzing pass over the cargo-fuzz targets in fuzz/ (handle, verify, file_id, list_page,
# sfs, aesgcm_url, aesgcm_decrypt).
#
#   ci/fuzz.sh                      # regressions once, then ~30 s per target from the seeds
#   FUZZ_SECONDS=600 ci/fuzz.sh     # longer runs
#   FUZZ_TARGETS="verify" ci/fuzz.sh
#
# Needs a nightly toolchain (`cargo +nightly`, for ASan) and cargo-fuzz (installed here when
# missing: `cargo install cargo-fuzz --locked`, 26-52 s) and a C++ compiler (libFuzzer). When
# any of these is unavailable the script says so and exits 0: CI never fails only because
# fuzzing is unavailable. It fails when the fuzz crate does not build (the targets no longer
# match the API) and when a target crashes: libFuzzer writes the input to
# fuzz/artifacts/<target>/; minimise it with `cargo +nightly fuzz tmin -a <target> <file>` and
# keep it in fuzz/regressions/<target>/.
#
# The first build takes about 4-8 minutes on 2 cores; later runs reuse fuzz/target. Long runs
# (10 million executions per target) are manual: see fuzz/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-handle verify file_id list_page sfs aesgcm_url aesgcm_decrypt}

skip() { echo "== fuzz: skipped: $*"; exit 0; }

cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"
command -v c++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
    || skip "no C++ compiler to build libFuzzer"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || skip "cargo-fuzz could not be installed"
    cargo +nightly fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not usable"
fi
echo "== fuzz: $(cargo +nightly --version), $(cargo +nightly fuzz --version)"

# -a: debug assertions and overflow checks, so arithmetic overflow is a crash too.
start=$(date +%s)
if ! cargo +nightly fuzz build -a; then
    echo "== fuzz: FAILED: the fuzz crate does not build" >&2
    exit 1
fi
echo "== fuzz: built in $(( $(date +%s) - start )) s"

failed=()
for t in $targets; do
    # Every saved regression input once (-runs=0 runs the given corpus and stops).
    if [ -d "fuzz/regressions/$t" ] && [ -n "$(ls -A "fuzz/regressions/$t")" ]; then
        echo "== fuzz: $t: regressions"
        if ! cargo +nightly fuzz run -a "$t" "fuzz/regressions/$t" -- -runs=0 -timeout=10; then
            failed+=("$t (regression)")
            continue
        fi
    fi
    echo "== fuzz: $t: ${seconds} s from fuzz/seeds/$t"
    mkdir -p "fuzz/corpus/$t"
    if ! cargo +nightly fuzz run -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 2>&1 \
        | { grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' || true; }; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "== fuzz: ok (${targets// /, })"
