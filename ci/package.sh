#!/usr/bin/env bash
# The crate as users get it: the MSRV claim against the dependencies, the packaged file list
# (no CI scripts, fixtures or fuzzing), `cargo package` (builds the packaged crate) and
# `cargo publish --dry-run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/msrv.sh
list=$(cargo package --list --allow-dirty -p xmpp-upload)
if grep -qE '^(ci/|fuzz/|tests/|\.ci/|component/|examples/client/)' <<<"$list"; then
  echo "package: carries files users do not need:"; grep -E '^(ci/|fuzz/|tests/|\.ci/|component/|examples/client/)' <<<"$list"; exit 1
fi
grep -qx LICENSE <<<"$list" && grep -qx README.md <<<"$list" && grep -qx CHANGELOG.md <<<"$list"
echo "package: $(wc -l <<<"$list") files"
clist=$(cargo package --list --allow-dirty -p xmpp-upload-component)
grep -qx LICENSE <<<"$clist" && grep -qx README.md <<<"$clist" && grep -qx CHANGELOG.md <<<"$clist"
echo "package: xmpp-upload-component, $(wc -l <<<"$clist") files"
# Both published packages (examples/client is publish = false), the component verified against the library as packaged (a local registry
# overlay: the library is not on crates.io yet).
cargo package --workspace --exclude xmpp-upload-client-example --allow-dirty --quiet
cargo publish --workspace --exclude xmpp-upload-client-example --dry-run --allow-dirty --quiet
echo "package: cargo package and cargo publish --dry-run passed for xmpp-upload and xmpp-upload-component"
