#!/usr/bin/env bash
# Connection floods against xmpp-upload-component's listeners (issue 20), all on 127.0.0.0/8:
#
#   1. http_attacks: 600 addresses (127.1.x.y) hold connections to the HTTP store: 48 with 32
#      each, 552 with one (2,088 in all, over the 2,048 cap), reopening what the server cuts;
#   2. fd_exhaust: the component runs under `prlimit --nofile=1024:1024` (soft = hard: it
#      cannot raise it) while 40 addresses try to hold 32 connections each.
#
# During each flood a fresh client (127.0.0.1) must get an answer from the store (OPTIONS)
# and from /healthz (200: a silent fake XMPP server accepts the component) within 1 s, every
# time it asks (twice a second). The component's log must show the refusals, at most one
# line a second. Bounded: FLOOD_SECONDS (default 12) per flood; stops everything it starts.
#
# Needs python3 and prlimit (util-linux); builds the component with `cargo install --path
# component` (ci/lib.sh). Environment: FLOOD_SECONDS, FLOODS_KEEP=1 (keep the run directory).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" floods

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${FLOOD_SECONDS:-12}"
command -v prlimit >/dev/null || apt_install util-linux

say "installing xmpp-upload-component (cargo install --path component)"
BIN=$(install_component)
[ -x "$BIN" ] || { echo "floods: $BIN not found" >&2; exit 1; }

RUN="$(mktemp -d /tmp/xmpp-upload-floods.XXXXXX)"
PIDS=()
cleanup() {
    local rc=$?
    stop_pids "${PIDS[@]}"
    [ "$rc" -eq 0 ] || tail_logs 30 "$RUN"/component-*.log
    keep_or_remove "$RUN" "$rc" "${FLOODS_KEEP:-0}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r XMPP_PORT HTTP_PORT OPS_PORT < <(free_ports 3)
mkdir -p "$RUN/store" "$RUN/secrets"
umask 077
COMPONENT_SECRET="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$COMPONENT_SECRET" >"$RUN/secrets/component_secret"
head -c 24 /dev/urandom | base64 >"$RUN/secrets/service_secret"
head -c 24 /dev/urandom | base64 >"$RUN/secrets/store_key"
umask 022
cat >"$RUN/component.toml" <<TOML
[xmpp]
jid = "upload.localhost"
server = "127.0.0.1:$XMPP_PORT"
component_secret_file = "$RUN/secrets/component_secret"
[service]
secret_file = "$RUN/secrets/service_secret"
allow_domains = ["localhost"]
[http]
listen = "127.0.0.1:$HTTP_PORT"
base_url = "http://127.0.0.1:$HTTP_PORT/upload/"
insecure_http = true
[ops]
listen = "127.0.0.1:$OPS_PORT"
[storage]
kind = "local"
[storage.local]
dir = "$RUN/store"
key_file = "$RUN/secrets/store_key"
TOML

python3 tests/floods/flood.py fake-xmpp "$XMPP_PORT" "$COMPONENT_SECRET" >"$RUN/fake-xmpp.log" 2>&1 &
PIDS+=("$!")
wait_port "$XMPP_PORT" 10 "$!"

FAILED=0
# NAME SPEC [prlimit args…]: starts the component, floods it, checks, stops it.
scenario() {
    local name=$1 spec=$2 log pid summary lines
    shift 2
    log="$RUN/component-$name.log"
    "$@" "$BIN" --config "$RUN/component.toml" >"$log" 2>&1 &
    pid=$!
    wait_port "$HTTP_PORT" 30 "$pid"
    wait_port "$OPS_PORT" 10 "$pid"
    for _ in $(seq 100); do grep -q 'xmpp: online as' "$log" && break; sleep 0.1; done
    say "$name: component up (pid $pid, open files $(awk '/Max open files/ {print $4}' "/proc/$pid/limits")); flooding for $SECONDS_EACH s with $spec"
    summary=$(python3 tests/floods/flood.py flood "$HTTP_PORT" "$OPS_PORT" "$SECONDS_EACH" "$spec")
    say "$name: $summary"
    stop_pids "$pid"
    grep -E 'at most [0-9]+ connections|open files raised' "$log" | sed "s/^/floods [$name] log: /" || true
    # Refusals are logged, at most one line a second.
    lines=$(grep -cE 'http: (refused|closed|accept failed)' "$log" || true)
    say "$name: $lines rate-limited refusal lines in the log, e.g.: $(grep -m1 -E 'http: (refused|closed|accept failed)' "$log" | cut -c1-200)"
    if ! python3 - "$summary" "$lines" "$SECONDS_EACH" <<'PY'
import json, sys
s, lines, secs = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
bad = []
if s["probes"] < 10: bad.append("too few probes")
if s["store_codes"] != [204]: bad.append("store answers %s" % s["store_codes"])
if s["healthz_codes"] != [200]: bad.append("/healthz answers %s" % s["healthz_codes"])
if s["store_max_s"] >= 1.0: bad.append("store took %.3f s" % s["store_max_s"])
if s["healthz_max_s"] >= 1.0: bad.append("/healthz took %.3f s" % s["healthz_max_s"])
if lines < 1: bad.append("no refusal logged")
if lines > secs + 5: bad.append("%d refusal lines in %.0f s" % (lines, secs))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
    then
        say "$name: FAILED"
        FAILED=1
    else
        say "$name: ok"
    fi
}

scenario http_attacks "48:32,552:1"
scenario fd_exhaust "40:32" prlimit --nofile=1024:1024 --

[ "$FAILED" -eq 0 ] || { echo "floods: a flood kept a client out" >&2; exit 1; }
say "all floods passed"
