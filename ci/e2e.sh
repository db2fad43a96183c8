#!/usr/bin/env bash
# End-to-end test of xmpp-upload-component with real peers, all on 127.0.0.1:
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
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" e2e

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH="${E2E_BENCH:-500}"
MAX_FILE_SIZE=$((10 * 1024 * 1024))

# --- peers -------------------------------------------------------------------------------------
if command -v prosody >/dev/null 2>&1; then
    say "Prosody already installed: $(command -v prosody)"
else
    apt_install prosody
fi

VENV="$ROOT/.venv"
ensure_slixmpp_venv "$VENV"
say "$("$VENV/bin/python" -c 'import slixmpp, aiohttp; print("slixmpp", slixmpp.__version__, "aiohttp", aiohttp.__version__)')"

# --- build -------------------------------------------------------------------------------------
PROFILE=debug
if [ "${E2E_RELEASE:-0}" = 1 ]; then PROFILE=release; fi
say "installing xmpp-upload-component ($PROFILE, cargo install --path component)"
t=$(date +%s)
BIN=$(XMPP_UPLOAD_COMPONENT_PROFILE=$PROFILE install_component)
[ -x "$BIN" ] || { echo "e2e: $BIN not found" >&2; exit 1; }
say "built in $(( $(date +%s) - t )) s"

# --- run directory, ports, config --------------------------------------------------------------
RUN="$(mktemp -d /tmp/xmpp-upload-e2e.XXXXXX)"
PIDS=()
cleanup() {
    local rc=$?
    stop_pids "${PIDS[@]}"
    [ "$rc" -eq 0 ] || tail_logs 40 "$RUN/prosody.log" "$RUN/component.log"
    keep_or_remove "$RUN" "$rc" "${E2E_KEEP:-0}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r C2S_PORT COMPONENT_PORT PROSODY_HTTP_PORT HTTP_PORT OPS_PORT FAKE_PORT S3_PORT S3_OPS_PORT GRACE_HTTP_PORT < <(free_ports 9)
COMPONENT_SECRET="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
mkdir -p "$RUN/data" "$RUN/store" "$RUN/secrets"
# Secrets for xmpp-upload-component: files (mode 600) and one environment variable, never
# command-line flags. Each is checked against /proc/PID/cmdline and the log below.
umask 077
printf '%s\n' "$COMPONENT_SECRET" >"$RUN/secrets/component_secret"
SERVICE_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$SERVICE_SECRET" >"$RUN/secrets/service_secret"
OLD_SERVICE_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$OLD_SERVICE_SECRET" >"$RUN/secrets/service_secret.old"
ADMIN_TOKEN="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$ADMIN_TOKEN" >"$RUN/secrets/admin_token"
E2E_STORE_KEY="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
export E2E_STORE_KEY
umask 022
SECRETS=("$COMPONENT_SECRET" "$SERVICE_SECRET" "$OLD_SERVICE_SECRET" "$ADMIN_TOKEN" "$E2E_STORE_KEY")
sed -e "s#@RUN@#$RUN#g" \
    -e "s#@COMPONENT_PORT@#$COMPONENT_PORT#g" \
    -e "s#@HTTP_PORT@#$HTTP_PORT#g" \
    -e "s#@OPS_PORT@#$OPS_PORT#g" \
    -e "s#@MAX_FILE_SIZE@#$MAX_FILE_SIZE#g" \
    tests/e2e/component.toml > "$RUN/component.toml"
sed -e "s#@RUN@#$RUN#g" \
    -e "s#@C2S_PORT@#$C2S_PORT#g" \
    -e "s#@COMPONENT_PORT@#$COMPONENT_PORT#g" \
    -e "s#@HTTP_PORT@#$PROSODY_HTTP_PORT#g" \
    -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" \
    -e "s#@MAX_FILE_SIZE@#$MAX_FILE_SIZE#g" \
    tests/e2e/prosody.cfg.lua > "$RUN/prosody.cfg.lua"
say "ports: c2s $C2S_PORT, component $COMPONENT_PORT, prosody http $PROSODY_HTTP_PORT, upload http $HTTP_PORT"

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
"$BIN" --config "$RUN/component.toml" --check >"$RUN/component-check.log" 2>&1 \
    || { cat "$RUN/component-check.log"; echo "e2e: xmpp-upload-component --check refused the config" >&2; exit 1; }
"$BIN" --config "$RUN/component.toml" >"$RUN/component.log" 2>&1 &
COMPONENT_PID=$!
PIDS+=("$COMPONENT_PID")
for _ in $(seq 300); do
    grep -q 'xmpp: online as' "$RUN/component.log" && break
    kill -0 "$COMPONENT_PID" 2>/dev/null || { echo "e2e: xmpp-upload-component exited" >&2; exit 1; }
    sleep 0.1
done
grep -q 'xmpp: online as' "$RUN/component.log" || { echo "e2e: xmpp-upload-component did not connect in 30 s" >&2; exit 1; }
wait_port "$HTTP_PORT" 10 "$COMPONENT_PID"
say "xmpp-upload-component connected (pid $COMPONENT_PID)"

# --- no secret on the command line -------------------------------------------------------------
CMDLINE="$(tr '\0' ' ' <"/proc/$COMPONENT_PID/cmdline")"
for secret in "${SECRETS[@]}"; do
    case "$CMDLINE" in *"$secret"*) echo "e2e: a secret is on the component's command line" >&2; exit 1;; esac
done
say "no secret in /proc/$COMPONENT_PID/cmdline ($CMDLINE)"
curl -fsS "http://127.0.0.1:$OPS_PORT/healthz" | grep -qx ok || { echo "e2e: /healthz is not ok" >&2; exit 1; }
say "/healthz: ok"

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
    || { echo "e2e: xmpp-upload-component did not reconnect within 40 s" >&2; exit 1; }
say "xmpp-upload-component reconnected"
"$VENV/bin/python" tests/e2e/client.py --quick \
    --jid alice@localhost --password alicepw --port "$C2S_PORT" \
    --base-url "$BASE_URL" --max-file-size "$MAX_FILE_SIZE" | tee -a "$RUN/client.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "e2e: client checks after the restart failed" >&2; exit 1; }

# --- hostile stanzas: through Prosody from a user, then straight over a XEP-0114 socket ----------
say "hostile stanzas from a user through Prosody"
ONLINE_BEFORE_HOSTILE="$(grep -c 'xmpp: online as' "$RUN/component.log")"
"$VENV/bin/python" tests/e2e/hostile_client.py \
    --jid alice@localhost --password alicepw --port "$C2S_PORT" --upload upload.localhost \
    | tee "$RUN/hostile-client.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "e2e: the component stopped answering after a hostile stanza" >&2; exit 1; }
[ "$(grep -c 'xmpp: online as' "$RUN/component.log")" -eq "$ONLINE_BEFORE_HOSTILE" ] \
    || { echo "e2e: a hostile stanza ended the component's XMPP session (it reconnected)" >&2; tail -n 20 "$RUN/component.log" >&2; exit 1; }
! grep -q '^FORGED-LOG-LINE' "$RUN/component.log" \
    || { echo "e2e: a user-made guard marker forged a log line" >&2; exit 1; }
kill -0 "$COMPONENT_PID" 2>/dev/null || { echo "e2e: xmpp-upload-component died of a hostile stanza" >&2; exit 1; }
say "hostile stanzas fed straight to a second component (a fake server on port $FAKE_PORT)"
sed -e "s#^server = .*#server = \"127.0.0.1:$FAKE_PORT\"#" \
    -e "s#^listen = \"127.0.0.1:$HTTP_PORT\"#listen = \"127.0.0.1:0\"#" \
    -e "/^\[ops\]/,/^$/d" \
    -e "s#^dir = .*#dir = \"$RUN/store-hostile\"#" \
    "$RUN/component.toml" >"$RUN/component-hostile.toml"
python3 tests/e2e/hostile_stanzas.py --port "$FAKE_PORT" --secret-file "$RUN/secrets/component_secret" \
    --component upload.localhost --depths 1000,14000,100000 --sizes 1000000 >"$RUN/hostile-direct.log" 2>&1 &
FAKE_PID=$!
PIDS+=("$FAKE_PID")
sleep 0.3
"$BIN" --config "$RUN/component-hostile.toml" >"$RUN/component-hostile.log" 2>&1 &
HOSTILE_PID=$!
PIDS+=("$HOSTILE_PID")
FAKE_RC=0
wait "$FAKE_PID" || FAKE_RC=$?
cat "$RUN/hostile-direct.log"
kill -0 "$HOSTILE_PID" 2>/dev/null || { echo "e2e: the second component died" >&2; tail -n 20 "$RUN/component-hostile.log" >&2; exit 1; }
[ "$FAKE_RC" -eq 0 ] || { echo "e2e: hostile stanzas fed directly broke the component" >&2; exit 1; }
kill -TERM "$HOSTILE_PID"; wait "$HOSTILE_PID" 2>/dev/null || true

# --- graceful stop: a PUT in flight when SIGTERM arrives is still stored -----------------------
say "graceful stop with a PUT in flight"
sed -e "s#^dir = .*#dir = \"$RUN/store-graceful\"#" \
    -e "s#^listen = .*#listen = \"127.0.0.1:$GRACE_HTTP_PORT\"#" \
    -e "s#^base_url = .*#base_url = \"http://127.0.0.1:$GRACE_HTTP_PORT/upload/\"#" \
    "$RUN/component-hostile.toml" >"$RUN/component-graceful.toml"
python3 tests/e2e/graceful_put.py --port "$FAKE_PORT" --secret-file "$RUN/secrets/component_secret" \
    --go "$RUN/graceful.go" >"$RUN/graceful.log" 2>&1 &
GRACE_DRIVER=$!
PIDS+=("$GRACE_DRIVER")
sleep 0.3
"$BIN" --config "$RUN/component-graceful.toml" >"$RUN/component-graceful.log" 2>&1 &
GRACE_PID=$!
PIDS+=("$GRACE_PID")
for _ in $(seq 200); do grep -q ready "$RUN/graceful.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$RUN/graceful.log" || { cat "$RUN/graceful.log"; echo "e2e: graceful driver not ready" >&2; exit 1; }
kill -TERM "$GRACE_PID"
touch "$RUN/graceful.go"
GRACE_RC=0
wait "$GRACE_DRIVER" || GRACE_RC=$?
cat "$RUN/graceful.log"
COMP_RC=0
wait "$GRACE_PID" || COMP_RC=$?
[ "$GRACE_RC" -eq 0 ] || { tail -n 10 "$RUN/component-graceful.log" >&2; echo "e2e: the PUT in flight was not stored after SIGTERM" >&2; exit 1; }
[ "$COMP_RC" -eq 0 ] || { echo "e2e: the component exited with $COMP_RC after SIGTERM" >&2; exit 1; }
grep -q 'waiting for 1 requests in flight' "$RUN/component-graceful.log" \
    || { echo "e2e: the component did not wait for the PUT in flight" >&2; exit 1; }
[ "$(find "$RUN/store-graceful" -mindepth 2 -name slow.bin -size 200000c | wc -l)" -eq 1 ] \
    || { echo "e2e: the PUT in flight is not in the store" >&2; exit 1; }
say "SIGTERM with a PUT in flight: the component waited, stored it (201) and exited 0"

# --- S3 storage (when s3s-fs is installed, as ci/s3_e2e.sh does before this script in .ci/run) ---
S3S_FS="$(command -v s3s-fs || echo "$S3S_FS_BIN")"
if [ -x "$S3S_FS" ]; then
    say "S3 storage: a component on s3s-fs ($("$S3S_FS" --version 2>/dev/null || echo '?'))"
    S3_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    SECRETS+=("$S3_SECRET")
    (umask 077; printf '%s\n' "$S3_SECRET" >"$RUN/secrets/s3_secret_key")
    mkdir -p "$RUN/s3/uploads"
    # s3s-fs itself takes its key as an argument: a test double, not the component.
    "$S3S_FS" --host 127.0.0.1 --port "$S3_PORT" --access-key e2e-access-key --secret-key "$S3_SECRET" \
        "$RUN/s3" >"$RUN/s3s-fs.log" 2>&1 &
    S3_PID=$!
    PIDS+=("$S3_PID")
    wait_port "$S3_PORT" 20 "$S3_PID"
    sed -e "s#@RUN@#$RUN#g" -e "s#@FAKE_PORT@#$FAKE_PORT#g" -e "s#@OPS_PORT@#$S3_OPS_PORT#g" \
        -e "s#@S3_PORT@#$S3_PORT#g" tests/e2e/component-s3.toml >"$RUN/component-s3.toml"
    "$BIN" --config "$RUN/component-s3.toml" --check >>"$RUN/component-check.log" 2>&1 \
        || { cat "$RUN/component-check.log"; echo "e2e: --check refused the S3 config" >&2; exit 1; }
    python3 tests/e2e/component_s3.py --port "$FAKE_PORT" --secret-file "$RUN/secrets/component_secret" \
        --ops-port "$S3_OPS_PORT" --expect-deleted --stored-quota 1000000 >"$RUN/component-s3-driver.log" 2>&1 &
    DRIVER_PID=$!
    PIDS+=("$DRIVER_PID")
    sleep 0.3
    "$BIN" --config "$RUN/component-s3.toml" >"$RUN/component-s3.log" 2>&1 &
    S3_COMPONENT_PID=$!
    PIDS+=("$S3_COMPONENT_PID")
    DRIVER_RC=0
    wait "$DRIVER_PID" || DRIVER_RC=$?
    cat "$RUN/component-s3-driver.log"
    [ "$DRIVER_RC" -eq 0 ] || { echo "e2e: the S3-backed component failed" >&2; tail -n 20 "$RUN/component-s3.log" >&2; exit 1; }
    kill -TERM "$S3_COMPONENT_PID"; wait "$S3_COMPONENT_PID" 2>/dev/null || true
else
    say "S3 storage: skipped (no s3s-fs; ci/s3_e2e.sh installs it)"
fi

# --- metrics, admin endpoint (account removal) ---------------------------------------------------
METRICS="$(curl -fsS "http://127.0.0.1:$OPS_PORT/metrics")"
metric() { printf '%s\n' "$METRICS" | awk -v m="$1" '$1 == m { print $2 }'; }
[ "$(metric xmpp_upload_slots_issued_total)" -gt 0 ] || { echo "e2e: metrics: no slots issued" >&2; exit 1; }
[ "$(metric xmpp_upload_files_stored_total)" -gt 0 ] || { echo "e2e: metrics: no files stored" >&2; exit 1; }
[ "$(metric xmpp_upload_bytes_uploaded_total)" -gt 0 ] || { echo "e2e: metrics: no bytes uploaded" >&2; exit 1; }
[ "$(metric xmpp_upload_stanzas_dropped_total)" -gt 0 ] || { echo "e2e: metrics: no hostile stanza counted" >&2; exit 1; }
STORED="$(metric xmpp_upload_stored_files)"
say "metrics: $(metric xmpp_upload_slots_issued_total) slots issued, $(metric xmpp_upload_files_stored_total) files ($(metric xmpp_upload_bytes_uploaded_total) bytes) stored, $(metric xmpp_upload_stanzas_dropped_total) stanzas dropped, $STORED files recorded"
CODE="$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$OPS_PORT/admin/users/alice@localhost/files")"
[ "$CODE" = 401 ] || { echo "e2e: admin endpoint without a token answered $CODE, not 401" >&2; exit 1; }
ANSWER="$(curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$OPS_PORT/admin/users/alice@localhost/files")"
say "account removal of alice@localhost: $ANSWER"
case "$ANSWER" in "deleted $STORED of $STORED") ;; *) echo "e2e: expected 'deleted $STORED of $STORED'" >&2; exit 1;; esac
LEFT="$(find "$RUN/store" -mindepth 2 -type f -not -path '*/.tmp/*' | wc -l)"
[ "$LEFT" -eq 0 ] || { echo "e2e: $LEFT files left in the store after the account removal" >&2; exit 1; }

# --- graceful stop -----------------------------------------------------------------------------
kill -TERM "$COMPONENT_PID"
STOP_RC=0
for _ in $(seq 150); do kill -0 "$COMPONENT_PID" 2>/dev/null || break; sleep 0.1; done
wait "$COMPONENT_PID" || STOP_RC=$?
[ "$STOP_RC" -eq 0 ] || { echo "e2e: xmpp-upload-component exited with $STOP_RC on SIGTERM" >&2; exit 1; }
grep -q 'xmpp-upload-component: stopping' "$RUN/component.log" || { echo "e2e: no stop line in the log" >&2; exit 1; }
say "SIGTERM: stopped cleanly"

# --- logs: one line per request, never a signature, key or secret ------------------------------
for secret in "${SECRETS[@]}"; do
    for log in "$RUN"/component*.log; do
        if grep -qF "$secret" "$log"; then echo "e2e: a secret is in $log" >&2; exit 1; fi
    done
done
if grep -E 'sig=|exp=|md5=|\?' "$RUN/component.log" >/dev/null || grep -F "$COMPONENT_SECRET" "$RUN/component.log" >/dev/null; then
    echo "e2e: the component log contains a query string or a secret:" >&2
    grep -nE 'sig=|exp=|md5=|\?' "$RUN/component.log" | head -n 5 >&2
    exit 1
fi
say "component log: $(grep -c 'xmpp: ' "$RUN/component.log") xmpp lines, $(grep -c 'http: ' "$RUN/component.log") http lines, no query strings or secrets"

kill -0 "$PROSODY_PID" 2>/dev/null || { echo "e2e: Prosody died during the run" >&2; exit 1; }
say "passed"
