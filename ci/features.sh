#!/usr/bin/env bash
# Each feature alone, and none: builds, lints and tests (the library's own tests; the
# integration binary needs the three backends and runs in `cargo test --all-features`).
# `--no-default-features` must stay the stanza layer alone.
set -euo pipefail
cd "$(dirname "$0")/.."
for features in "" service signed external s3 http aesgcm; do
  args=(--no-default-features)
  [ -n "$features" ] && args+=(--features "$features")
  echo "features: ${features:-none}"
  cargo clippy --quiet "${args[@]}" --lib --tests -- -D warnings
  cargo test --quiet "${args[@]}" --lib --tests 2>&1 | grep -E "^test result" || exit 1
done
none=$(cargo tree -e normal --no-default-features --prefix none | sort -u | wc -l)
all=$(cargo tree -e normal --all-features --prefix none | sort -u | wc -l)
echo "normal dependency tree: $none crates without features, $all with all of them"
[ "$none" -lt "$all" ] || { echo "features: --no-default-features pulls in as much as --all-features"; exit 1; }
# The library's own tests, benches and examples stay lean: the component's XMPP stack and
# PostgreSQL driver are its dependencies only.
heavy=$(cargo tree -p xmpp-upload -e normal,dev --all-features --prefix none | sed 's/ (.*)$//' | sort -u \
  | awk '$1 ~ /^(tokio-postgres|tokio-xmpp|deadpool-postgres)$/ {print $1}' | sort -u | tr '\n' ' ')
if [ -n "$heavy" ]; then
  echo "features: the library's tests would compile ${heavy}"; exit 1
fi
echo "features: the library's tests compile neither tokio-xmpp nor tokio-postgres"
