#!/usr/bin/env bash
# The crate as users get it: the MSRV claim against the dependencies, the packaged file list
# (no CI scripts, fixtures or fuzzing), `cargo package` (builds the packaged crate) and
# `cargo publish --dry-run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/msrv.sh
list=$(cargo package --list --allow-dirty)
if grep -qE '^(ci/|fuzz/|tests/|\.ci/)' <<<"$list"; then
  echo "package: carries files users do not need:"; grep -E '^(ci/|fuzz/|tests/|\.ci/)' <<<"$list"; exit 1
fi
grep -qx LICENSE <<<"$list" && grep -qx README.md <<<"$list" && grep -qx CHANGELOG.md <<<"$list"
echo "package: $(wc -l <<<"$list") files"
cargo package --allow-dirty --quiet
cargo publish --dry-run --allow-dirty --quiet
echo "package: cargo package and cargo publish --dry-run passed"
