#!/usr/bin/env bash
# End-to-end test of examples/upload_component with real peers, all on 127.0.0.1:
#   Prosody 0.12 (Debian package) with `Component "upload.localhost"` (ours, XEP-0114) and
#   `Component "share.localhost" "http_file_share"` (Prosody's own XEP-0363 service), and a
#   slixmpp client (PyPI, tests/e2e/client.py) that discovers, uploads, downloads, checks the
#   refusals and the p1 file-ID flow, then times N sequential slot requests through each service.
#
# Installs Prosody (apt) only when `prosody` is missing and slixmpp into .venv only when it is not
# there yet. Every process it starts is stopped on exit. Exits non-zero on any failure.
#
# Environment: E2E_BENCH (slot requests per service, default 500), E2E_KEEP=1 (keep the run
# directory with the logs), E2E_RELEASE=1 (benchmark a release build of the component instead of
# the debug build), CARGO_TARGET_DIR (honoured when finding the example binary).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH="${E2E_BENCH:-500}"
MAX_FILE_SIZE=$((10 * 1024 * 1024))
T0=$(date +%s)
say() { printf 'e2e [t+%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

# --- peers -------------------------------------------------------------------------------------
if ! command -v prosody >/dev/null 2>&1; then
    say "installing Prosody (Debian package)"
    t=$(date +%s)
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prosody >/dev/null
    say "Prosody installed in $(( $(date +%s) - t )) s"
else
    say "Prosody already installed: $(command -v prosody)"
fi

VENV="$ROOT/.venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import slixmpp, aiohttp' 2>/dev/null; then
    say "slixmpp already in $VENV"
else
    say "installing slixmpp[xep-0363] into $VENV"
    t=$(date +%s)
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian's own python3 needs its venv module from a separate package.
        rm -rf "$VENV"
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check 'slixmpp[xep-0363]'
    say "slixmpp installed in $(( $(date +%s) - t )) s"
fi
say "$("$VENV/bin/python" -c 'import slixmpp, aiohttp; print("slixmpp", slixmpp.__version__, "aiohttp", aiohttp.__version__)')"

# --- build -------------------------------------------------------------------------------------
PROFILE=debug; PROFILE_FLAG=()
if [ "${E2E_RELEASE:-0}" = 1 ]; then PROFILE=release; PROFILE_FLAG=(--release); fi
say "building examples/upload_component ($PROFILE)"
t=$(date +%s)
cargo build --quiet "${PROFILE_FLAG[@]}" --example upload_component
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/examples/upload_component"
[ -x "$BIN" ] || { echo "e2e: $BIN not found" >&2; exit 1; }
say "built in $(( $(date +%s) - t )) s"

# --- run directory, ports, config --------------------------------------------------------------
RUN="$(mktemp -d /tmp/xmpp-upload-e2e.XXXXXX)"
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        for log in "$RUN/prosody.log" "$RUN/component.log"; do
            [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 40 "$log"; }
        done
    fi
    if [ "$rc" -ne 0 ] || [ "${E2E_KEEP:-0}" = 1 ]; then
        echo "e2e: logs kept in $RUN"
    else
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r C2S_PORT COMPONENT_PORT PROSODY_HTTP_PORT HTTP_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
EOF
)
COMPONENT_SECRET="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
mkdir -p "$RUN/data" "$RUN/store"
sed -e "s#@RUN@#$RUN#g" \
    -e "s#@C2S_PORT@#$C2S_PORT#g" \
    -e "s#@COMPONENT_PORT@#$COMPONENT_PORT#g" \
    -e "s#@HTTP_PORT@#$PROSODY_HTTP_PORT#g" \
    -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" \
    -e "s#@MAX_FILE_SIZE@#$MAX_FILE_SIZE#g" \
    tests/e2e/prosody.cfg.lua > "$RUN/prosody.cfg.lua"
say "ports: c2s $C2S_PORT, component $COMPONENT_PORT, prosody http $PROSODY_HTTP_PORT, upload http $HTTP_PORT"

wait_port() { # PORT SECONDS PID
    local i
    for i in $(seq $(( $2 * 10 ))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$3" 2>/dev/null || { echo "e2e: process $3 exited while waiting for port $1" >&2; return 1; }
        sleep 0.1
    done
    echo "e2e: port $1 not open after $2 s" >&2
    return 1
}

# --- Prosody -----------------------------------------------------------------------------------
prosodyctl --config "$RUN/prosody.cfg.lua" register alice localhost alicepw >"$RUN/prosodyctl.log" 2>&1 \
    || { cat "$RUN/prosodyctl.log"; exit 1; }
prosody -F --config "$RUN/prosody.cfg.lua" >"$RUN/prosody.log" 2>&1 &
PROSODY_PID=$!
PIDS+=("$PROSODY_PID")
wait_port "$C2S_PORT" 20 "$PROSODY_PID"
wait_port "$COMPONENT_PORT" 20 "$PROSODY_PID"
wait_port "$PROSODY_HTTP_PORT" 20 "$PROSODY_PID"
say "Prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?') up (pid $PROSODY_PID)"

# --- our component -----------------------------------------------------------------------------
BASE_URL="http://127.0.0.1:$HTTP_PORT/upload/"
"$BIN" \
    --xmpp-addr "127.0.0.1:$COMPONENT_PORT" \
    --jid upload.localhost \
    --component-secret "$COMPONENT_SECRET" \
    --http-addr "127.0.0.1:$HTTP_PORT" \
    --base-url "$BASE_URL" \
    --store-dir "$RUN/store" \
    --max-file-size "$MAX_FILE_SIZE" \
    --allow-domain localhost \
    --retention-days 1 \
    --insecure-http \
    >"$RUN/component.log" 2>&1 &
COMPONENT_PID=$!
PIDS+=("$COMPONENT_PID")
for _ in $(seq 300); do
    grep -q 'xmpp: online as' "$RUN/component.log" && break
    kill -0 "$COMPONENT_PID" 2>/dev/null || { echo "e2e: upload_component exited" >&2; exit 1; }
    sleep 0.1
done
grep -q 'xmpp: online as' "$RUN/component.log" || { echo "e2e: upload_component did not connect in 30 s" >&2; exit 1; }
wait_port "$HTTP_PORT" 10 "$COMPONENT_PID"
say "upload_component connected (pid $COMPONENT_PID)"

# --- client ------------------------------------------------------------------------------------
say "running tests/e2e/client.py (benchmark: $BENCH requests per service)"
"$VENV/bin/python" tests/e2e/client.py \
    --jid alice@localhost --password alicepw --port "$C2S_PORT" \
    --upload upload.localhost --share share.localhost \
    --base-url "$BASE_URL" --max-file-size "$MAX_FILE_SIZE" --bench "$BENCH" | tee "$RUN/client.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "e2e: client checks failed" >&2; exit 1; }

# --- Prosody restart: the component reconnects by itself ---------------------------------------
say "restarting Prosody"
ONLINE_BEFORE=$(grep -c 'xmpp: online as' "$RUN/component.log")
kill -TERM "$PROSODY_PID"
for _ in $(seq 100); do kill -0 "$PROSODY_PID" 2>/dev/null || break; sleep 0.1; done
wait "$PROSODY_PID" 2>/dev/null || true
prosody -F --config "$RUN/prosody.cfg.lua" >>"$RUN/prosody.log" 2>&1 &
PROSODY_PID=$!
PIDS+=("$PROSODY_PID")
wait_port "$C2S_PORT" 20 "$PROSODY_PID"
for _ in $(seq 400); do
    [ "$(grep -c 'xmpp: online as' "$RUN/component.log")" -gt "$ONLINE_BEFORE" ] && break
    sleep 0.1
done
[ "$(grep -c 'xmpp: online as' "$RUN/component.log")" -gt "$ONLINE_BEFORE" ] \
    || { echo "e2e: upload_component did not reconnect within 40 s" >&2; exit 1; }
say "upload_component reconnected"
"$VENV/bin/python" tests/e2e/client.py --quick \
    --jid alice@localhost --password alicepw --port "$C2S_PORT" \
    --base-url "$BASE_URL" --max-file-size "$MAX_FILE_SIZE" | tee -a "$RUN/client.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "e2e: client checks after the restart failed" >&2; exit 1; }

# --- logs: one line per request, never a signature, key or secret ------------------------------
if grep -E 'sig=|exp=|md5=|\?' "$RUN/component.log" >/dev/null || grep -F "$COMPONENT_SECRET" "$RUN/component.log" >/dev/null; then
    echo "e2e: the component log contains a query string or a secret:" >&2
    grep -nE 'sig=|exp=|md5=|\?' "$RUN/component.log" | head -n 5 >&2
    exit 1
fi
say "component log: $(grep -c 'xmpp: ' "$RUN/component.log") xmpp lines, $(grep -c 'http: ' "$RUN/component.log") http lines, no query strings or secrets"

kill -0 "$COMPONENT_PID" 2>/dev/null || { echo "e2e: upload_component died during the run" >&2; exit 1; }
kill -0 "$PROSODY_PID" 2>/dev/null || { echo "e2e: Prosody died during the run" >&2; exit 1; }
say "passed"
