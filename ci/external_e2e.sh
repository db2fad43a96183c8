#!/usr/bin/env bash
# Real-server test of storage::external against xmpp-http-upload 0.6.0 (crates.io), a server of
# the mod_http_upload_external protocol (`v` and `v2`). See /work/shared/PEERS.md.
#
#   ci/external_e2e.sh            # installs the server once, runs examples/external_e2e.rs
#
# Environment:
#   XHU_ROOT          install root (default ~/.cache/xmpp-upload-ci/xmpp-http-upload-0.6.0)
#   XHU_PORT          port to listen on (default: a free one from 20000-29999)
#   CARGO_TARGET_DIR  honoured by cargo as usual
#
# The install took 107 s here (2 cores, other builds running; PEERS.md measured about 27 s on an
# idle machine). It is skipped when the binary is present.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "=="

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=${XHU_ROOT:-$HOME/.cache/xmpp-upload-ci/xmpp-http-upload-0.6.0}
bin=$root/bin/xmpp-http-upload

if [ ! -x "$bin" ]; then
    say "installing xmpp-http-upload 0.6.0 into $root"
    start=$(date +%s)
    # Default features need libclang (Postgres); `localfiledb` does not compile.
    cargo install xmpp-http-upload@0.6.0 --locked --no-default-features --features sqlite --root "$root"
    say "installed in $(( $(date +%s) - start )) s"
else
    say "using $bin"
fi

port=${XHU_PORT:-}
[ -n "$port" ] || port=$(random_free_port 20000) || { echo "no free port found" >&2; exit 1; }

work=$(mktemp -d)
mkdir -p "$work/data"
secret="e2e-$(date +%s%N)-$$"
# No [daemon] section: with one the server forks and drops privileges.
cat > "$work/config.toml" <<EOF
[server]
address = "127.0.0.1"
port = $port
secret_string = "$secret"
lock_file = "$work/xhu.lock"

[log]
file = { File = "$work/xhu.log" }
min_level = "Info"

[database.file]
path = "$work/data/"
filename = "db.sqlite"
EOF

server_pid=
cleanup() {
    status=$?
    [ -z "$server_pid" ] || stop_pids "$server_pid"
    [ "$status" -eq 0 ] || tail_logs 50 "$work/xhu.log" >&2
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

say "starting xmpp-http-upload on 127.0.0.1:$port"
"$bin" -c "$work/config.toml" > "$work/stdout.log" 2>&1 &
server_pid=$!

# It exits 0 even when start-up fails (stale lock file, missing DB folder): poll the port.
wait_port "$port" 10 "$server_pid" || { echo "xmpp-http-upload did not start:" >&2; cat "$work/stdout.log" >&2 || true; exit 1; }

# The server signs the whole URL path: the base URL must have no path prefix.
cd "$repo"
XHU_BASE="http://127.0.0.1:$port/" XHU_SECRET="$secret" cargo run --quiet --example external_e2e -- v1 v2
