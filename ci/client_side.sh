#!/usr/bin/env bash
# The client side of sharing a file (issue 18): examples/send_file.rs, a tokio-xmpp 6 client built
# on xmpp-upload's share builders, classify, FileHasher/Verifier and the aesgcm module, against
# peers nobody here wrote, all on 127.0.0.1:
#   offline  slixmpp 1.17 (PyPI, extras xep-0363 and xep-0454; tests/e2e/slixmpp_share.py):
#            XEP_0454.decrypt opens what the crate encrypted and the crate decrypts what
#            XEP_0454.encrypt made; a flipped ciphertext byte fails both (the crate: exit 1, no
#            file, no temporary file left); XEP_0447.get_sfs output parses into the crate's
#            FileSharing (the example's parse-sfs); slixmpp reads the crate's SFS message back
#            (Message(xml=…)['sfs'], body, OOB).
#   live     Prosody 0.12 with its own mod_http_file_share and ejabberd 23.01 with its own
#            mod_http_upload, both serving HTTPS with a certificate for localhost signed by a
#            test CA of this run (the example trusts it with --ca-file). Per server and shape
#            (legacy, sfs, sfs-two-step, aesgcm) alice's `send_file send` uploads a file
#            through the server's own upload module and bob's `send_file receive` downloads,
#            verifies (SFS hashes) or decrypts (aesgcm tag), and saves it: byte-identical, the
#            only file in its folder; the aesgcm key appears in no log of ours or the servers'.
#            profanity 0.13 (Debian) as bob, driven in a private tmux server: `/url save <the
#            aesgcm link the example sent> PATH` gives the same bytes; after one byte of the
#            stored object is flipped on disk, `/url save` again must fail (judged by its
#            message and the bytes).
#   memory   `send_file send --shape aesgcm` of a generated (sparse) file through ejabberd, under
#            /usr/bin/time -v: peak RSS of the sender and of bob's receiver (download, decrypt,
#            verify, save), each must stay under 32 MiB. 64 MiB here; CLIENT_SIDE_FULL=1 uses
#            1 GiB (the full form).
# Ends with a table (rows: checks, columns: offline and the two servers); exits non-zero on any
# failure.
#
# Installs what is missing (apt: prosody ejabberd profanity tmux openssl curl time python3-venv;
# pip into .venv: slixmpp[xep-0363,xep-0454]==1.17.0) and builds the example with
# `cargo build -p xmpp-upload-client-example --example send_file` alone (a --workspace build
# would give xmpp-parsers the component namespace). Every process it starts is stopped on exit.
#
# Environment: CLIENT_SIDE_FULL=1 (1 GiB memory run), CLIENT_SIDE_MEM_MIB (override the size),
# CLIENT_SIDE_KEEP=1 (keep the run directory), CARGO_TARGET_DIR (honoured).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" client-side

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FULL="${CLIENT_SIDE_FULL:-0}"
MEM_MIB="${CLIENT_SIDE_MEM_MIB:-$([ "$FULL" = 1 ] && echo 1024 || echo 64)}"
RSS_LIMIT_KIB=$((32 * 1024))
RECV_WAIT=60
SHAPES="${CLIENT_SIDE_SHAPES:-legacy sfs sfs-two-step aesgcm}"
SERVERS="${CLIENT_SIDE_SERVERS:-prosody ejabberd}"
SLIXMPP_VERSION=1.17.0
VENV="$ROOT/.venv"

# --- installs (each skipped when present) ------------------------------------------------------
APT=()
command -v prosody >/dev/null 2>&1 || APT+=(prosody)
{ command -v erl >/dev/null 2>&1 && [ -n "$(ejabberd_libs)" ]; } || APT+=(ejabberd)
command -v profanity >/dev/null 2>&1 || APT+=(profanity)
command -v tmux >/dev/null 2>&1 || APT+=(tmux)
command -v openssl >/dev/null 2>&1 || APT+=(openssl)
command -v curl >/dev/null 2>&1 || APT+=(curl)
[ -x /usr/bin/time ] || APT+=(time)
python3 -c 'import ensurepip' >/dev/null 2>&1 || APT+=(python3-venv)
if [ "${#APT[@]}" -gt 0 ]; then apt_install "${APT[@]}"; else say "apt packages already installed"; fi
[ -n "$(ejabberd_libs)" ] || { echo "client-side: ejabberd's Erlang libraries not found" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "
import slixmpp, cryptography, aiohttp, sys
sys.exit(0 if slixmpp.__version__ == '$SLIXMPP_VERSION' else 1)" 2>/dev/null; then
    say "slixmpp $SLIXMPP_VERSION with xep-0454 already in $VENV"
else
    say "installing slixmpp[xep-0363,xep-0454]==$SLIXMPP_VERSION into $VENV"
    t=$(date +%s)
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "slixmpp[xep-0363,xep-0454]==$SLIXMPP_VERSION"
    say "slixmpp installed in $(( $(date +%s) - t )) s"
fi
PY="$VENV/bin/python"
ORACLE="$ROOT/tests/e2e/slixmpp_share.py"

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
declare -A VER=(
    [offline]="offline: slixmpp $SLIXMPP_VERSION"
    [prosody]="Prosody $(version prosody), mod_http_file_share"
    [ejabberd]="ejabberd $(version ejabberd), mod_http_upload"
)
say "${VER[prosody]}; ${VER[ejabberd]}; profanity $(version profanity); slixmpp $SLIXMPP_VERSION"

# --- build: the example alone, so that xmpp-parsers keeps the jabber:client namespace ------------
say "building send_file (cargo build -p xmpp-upload-client-example --example send_file)"
t=$(date +%s)
cargo build --quiet --locked -p xmpp-upload-client-example --example send_file
say "built in $(( $(date +%s) - t )) s"
RUN="$(mktemp -d /tmp/xmpp-upload-client-side.XXXXXX)"
cp "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/send_file" "$RUN/send_file"
BIN="$RUN/send_file"

# --- results table, clean-up ------------------------------------------------------------------
COLUMNS_="offline $SERVERS"
PIDS=()
TMUX_SOCK="$RUN/tmux.sock"
declare -A RESULT=()
ROWS=()
FAILED=0
FAILED_LOGS=()
add_row() { local r; for r in "${ROWS[@]}"; do [ "$r" = "$1" ] && return 0; done; ROWS+=("$1"); }
record() { # ROW COLUMN MARK TEXT
    add_row "$1"
    RESULT["$1|$2"]="$3 ${4//[$'\t\r\n']/ }"
    [ "$3" != "✗" ] || FAILED=1
    say "$1 [$2]: $3 $4"
}
# Any text that leaves the run directory goes through this: aesgcm fragments become <key>.
mask() { sed -E 's/#[0-9A-Fa-f]{88,96}/#<key>/g'; }
print_table() {
    # shellcheck disable=SC2086 # COLUMNS_ is a word list
    print_results_table "$RUN/table.tsv" check - $COLUMNS_
}
cleanup() {
    local rc=$? log
    if [ -S "$TMUX_SOCK" ]; then tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true; fi
    stop_pids "${PIDS[@]}"
    print_table
    if [ "$rc" -eq 0 ] && [ "$FAILED" -ne 0 ]; then rc=1; fi
    if [ "$rc" -ne 0 ]; then
        for log in "${FAILED_LOGS[@]}"; do
            [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 30 "$log" | mask; }
        done
    fi
    keep_or_remove "$RUN" "$rc" "${CLIENT_SIDE_KEEP:-0}"
    say "finished (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_log() { # FILE REGEX SECONDS
    local _
    for _ in $(seq $(( $3 * 10 ))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
tm() { LC_ALL=C.UTF-8 tmux -u -S "$TMUX_SOCK" "$@"; }
tmux_wait() { # SESSION REGEX SECONDS
    local _
    for _ in $(seq $(( $3 * 10 ))); do
        tm capture-pane -p -J -t "$1" 2>/dev/null | grep -qE "$2" && return 0
        sleep 0.1
    done
    return 1
}

# --- certificates: a test CA and a leaf for localhost it signed (rustls refuses a self-signed
# CA certificate used as the server's own) ----------------------------------------------------------
CERTS="$RUN/certs"
mkdir -p "$CERTS"
(
    cd "$CERTS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=xmpp-upload client-side test CA" \
        -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout localhost.key -out localhost.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,DNS:share.localhost,DNS:upload.localhost,IP:127.0.0.1" >leaf.ext
    openssl x509 -req -in localhost.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile leaf.ext -out localhost.crt
    cat localhost.crt localhost.key >localhost.pem
    chmod 600 ./*.key localhost.pem
) >"$RUN/openssl.log" 2>&1 || { cat "$RUN/openssl.log"; exit 1; }
CA="$CERTS/ca.crt"

# --- offline: slixmpp as the oracle -------------------------------------------------------------
OFF="$RUN/offline"
mkdir -p "$OFF"
head -c 100003 /dev/urandom >"$OFF/photo.jpg"   # not a multiple of 16
URL="https://upload.example/4a771ac1/photo.jpg"
offline() {
    local why
    "$BIN" encrypt --url "$URL" --link-out "$OFF/rust.link" "$OFF/photo.jpg" "$OFF/rust.enc" >"$OFF/enc.log" 2>&1
    if "$PY" "$ORACLE" decrypt "$OFF/rust.link" "$OFF/rust.enc" "$OFF/rust.by-slixmpp" >"$OFF/slix-dec.log" 2>&1 \
        && cmp -s "$OFF/photo.jpg" "$OFF/rust.by-slixmpp"; then
        record "aesgcm: slixmpp XEP_0454.decrypt opens the crate's" offline "✓" "$(stat -c %s "$OFF/rust.enc") B = 100003 + 16, identical"
    else
        record "aesgcm: slixmpp XEP_0454.decrypt opens the crate's" offline "✗" "$(tail -n 1 "$OFF/slix-dec.log")"
        FAILED_LOGS+=("$OFF/slix-dec.log")
    fi
    "$PY" "$ORACLE" encrypt "$OFF/photo.jpg" "$OFF/slix.enc" "$OFF/slix.link" "$URL" >"$OFF/slix-enc.log" 2>&1
    if "$BIN" decrypt --link-file "$OFF/slix.link" "$OFF/slix.enc" "$OFF/slix.by-crate" >"$OFF/dec.log" 2>&1 \
        && cmp -s "$OFF/photo.jpg" "$OFF/slix.by-crate"; then
        record "aesgcm: the crate decrypts slixmpp's XEP_0454.encrypt" offline "✓" "identical, tag verified"
    else
        record "aesgcm: the crate decrypts slixmpp's XEP_0454.encrypt" offline "✗" "$(tail -n 1 "$OFF/dec.log")"
        FAILED_LOGS+=("$OFF/dec.log")
    fi
    # One flipped byte in the middle of each ciphertext.
    cp "$OFF/slix.enc" "$OFF/slix.bad"; cp "$OFF/rust.enc" "$OFF/rust.bad"
    printf '\x5a' | dd of="$OFF/slix.bad" bs=1 seek=50000 conv=notrunc status=none
    printf '\x5a' | dd of="$OFF/rust.bad" bs=1 seek=50000 conv=notrunc status=none
    why=""
    if "$BIN" decrypt --link-file "$OFF/slix.link" "$OFF/slix.bad" "$OFF/bad.out" >"$OFF/bad.log" 2>&1; then
        why="the crate accepted a tampered file"
    elif [ -e "$OFF/bad.out" ] || compgen -G "$OFF/.send_file-*" >/dev/null; then
        why="a file or temporary file was left behind"
    elif "$PY" "$ORACLE" decrypt "$OFF/rust.link" "$OFF/rust.bad" "$OFF/bad2.out" >"$OFF/bad2.log" 2>&1; then
        why="slixmpp accepted a tampered file"
    fi
    if [ -z "$why" ]; then
        record "aesgcm: one flipped byte is refused" offline "✓" "crate: exit 1 \"$(tail -n 1 "$OFF/bad.log" | cut -c1-60)…\", nothing saved; slixmpp: $(tail -n 1 "$OFF/bad2.log")"
    else
        record "aesgcm: one flipped byte is refused" offline "✗" "$why"
    fi
    # SFS both ways.
    printf 'The quick brown fox jumps over the lazy dog' >"$OFF/fox.txt"
    local expected_hash="16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI="
    "$PY" "$ORACLE" get-sfs "$OFF/fox.txt" "https://upload.example/f/fox.txt" "$OFF/slix-sfs.xml" >/dev/null 2>"$OFF/get-sfs.log" \
        && "$BIN" parse-sfs "$OFF/slix-sfs.xml" >"$OFF/parsed.txt" 2>"$OFF/parse-sfs.log" || true
    if grep -qx "name: fox.txt" "$OFF/parsed.txt" 2>/dev/null && grep -qx "size: 43" "$OFF/parsed.txt" \
        && grep -qx "hash: sha-256 $expected_hash" "$OFF/parsed.txt" && grep -qx "url: https://upload.example/f/fox.txt" "$OFF/parsed.txt" \
        && grep -qx "disposition: attachment" "$OFF/parsed.txt"; then
        record "SFS: slixmpp get_sfs → the crate's FileSharing" offline "✓" "name, size, sha-256, url, disposition; its offset-less <date> kept as text ($(sed -n 's/^date: //p' "$OFF/parsed.txt"))"
    else
        record "SFS: slixmpp get_sfs → the crate's FileSharing" offline "✗" "$(cat "$OFF/parse-sfs.log" "$OFF/get-sfs.log" "$OFF/parsed.txt" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    fi
    "$BIN" sfs-message --url "https://upload.example/f/fox.txt" --to bob@localhost "$OFF/fox.txt" >"$OFF/rust-msg.xml" 2>"$OFF/sfs-message.log" \
        && "$PY" "$ORACLE" read-sfs "$OFF/rust-msg.xml" >"$OFF/slix-read.txt" 2>"$OFF/read-sfs.log" || true
    if grep -qx "name: fox.txt" "$OFF/slix-read.txt" 2>/dev/null && grep -qx "size: 43" "$OFF/slix-read.txt" \
        && grep -qx "hash: sha-256 $expected_hash" "$OFF/slix-read.txt" && grep -qx "url: https://upload.example/f/fox.txt" "$OFF/slix-read.txt" \
        && grep -qx "oob: https://upload.example/f/fox.txt" "$OFF/slix-read.txt"; then
        record "SFS: the crate's message → slixmpp Message['sfs']" offline "✓" "name, size, media-type, sha-256, url-data, body, OOB"
    else
        record "SFS: the crate's message → slixmpp Message['sfs']" offline "✗" "$(cat "$OFF/read-sfs.log" "$OFF/slix-read.txt" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    fi
}
offline

# --- servers ---------------------------------------------------------------------------------------
read -r P_C2S P_HTTPS E_C2S E_HTTPS E_HTTP < <(free_ports 5)
declare -A C2S=([prosody]=$P_C2S [ejabberd]=$E_C2S)
MAX_FILE_SIZE=$(( (MEM_MIB + 64) * 1024 * 1024 ))
fill() { # TEMPLATE OUT C2S HTTPS [HTTP]
    sed -e "s#@RUN@#$RUN#g" -e "s#@C2S_PORT@#$3#g" -e "s#@HTTPS_PORT@#$4#g" -e "s#@HTTP_PORT@#${5:-0}#g" \
        -e "s#@MAX_FILE_SIZE@#$MAX_FILE_SIZE#g" -e "s#@DAILY_QUOTA@#$(( MAX_FILE_SIZE * 4 ))#g" "$1" >"$2"
}
mkdir -p "$RUN/prosody/data"
fill tests/e2e/client-side-prosody.cfg.lua "$RUN/prosody/prosody.cfg.lua" "$P_C2S" "$P_HTTPS"
for u in alice bob; do
    prosodyctl --config "$RUN/prosody/prosody.cfg.lua" register "$u" localhost "${u}pw" >>"$RUN/prosodyctl.log" 2>&1 \
        || { cat "$RUN/prosodyctl.log"; exit 1; }
done
prosody -F --config "$RUN/prosody/prosody.cfg.lua" >"$RUN/prosody.log" 2>&1 &
PIDS+=("$!")
wait_port "$P_C2S" 20 "$!"
wait_port "$P_HTTPS" 20 "$!"
say "Prosody up (c2s $P_C2S, https $P_HTTPS)"

EJ="$RUN/ejabberd"
mkdir -p "$EJ/log" "$EJ/spool" "$EJ/upload"
fill tests/e2e/client-side-ejabberd.yml "$EJ/ejabberd.yml" "$E_C2S" "$E_HTTPS" "$E_HTTP"
start_ejabberd "$EJ" "$RUN/ejabberd-vm.log"
PIDS+=("$!")
wait_port "$E_C2S" 60 "$!"
wait_port "$E_HTTPS" 20 "$!"
wait_port "$E_HTTP" 20 "$!"
for u in alice bob; do
    code=$(curl -sS -o "$RUN/ejabberd-register.out" -w '%{http_code}' -X POST "http://127.0.0.1:$E_HTTP/api/register" \
        -H 'Content-Type: application/json' -d "{\"user\":\"$u\",\"host\":\"localhost\",\"password\":\"${u}pw\"}")
    [ "$code" = 200 ] || { echo "client-side: ejabberd register $u: HTTP $code $(cat "$RUN/ejabberd-register.out")" >&2; exit 1; }
done
say "ejabberd up (c2s $E_C2S, https $E_HTTPS)"
SERVER_LOGS=("$RUN/prosody.log" "$EJ/log/ejabberd.log" "$RUN/ejabberd-vm.log")

# --- live: send and receive every shape through each server's own upload module -------------------
# Runs bob's receiver in the background (pid in RECV_PID), waits until it is online.
start_receiver() { # SERVER DIR LOG [TIME-V-FILE]
    local pre=()
    mkdir -p "$2"
    [ -z "${4:-}" ] || pre=(/usr/bin/time -v -o "$4")
    # Bounded: the wait for the message, plus 20 minutes for the download (1 GiB in the full form).
    XMPP_PASSWORD=bobpw "${pre[@]}" timeout $(( RECV_WAIT + 1200 )) "$BIN" receive --jid bob@localhost --server "127.0.0.1:${C2S[$1]}" \
        --from alice@localhost --out-dir "$2" --ca-file "$CA" --wait "$RECV_WAIT" >"$3" 2>&1 &
    RECV_PID=$!
    PIDS+=("$RECV_PID")
    wait_log "$3" 'waiting for a shared file' 30
}
# Sets WHY on failure; SAVED to the received file.
send_receive() { # SERVER SHAPE FILE KEY
    local s=$1 shape=$2 f=$3 key=$4 dir="$RUN/recv/$4" rc=0 extra=()
    WHY=""; SAVED=""
    start_receiver "$s" "$dir" "$RUN/$key-recv.log" || { WHY="the receiver did not come online"; return 1; }
    [ "$shape" != aesgcm ] || extra=(--link-out "$RUN/$key.link")
    XMPP_PASSWORD=alicepw timeout 120 "$BIN" send --jid alice@localhost --server "127.0.0.1:${C2S[$s]}" --to bob@localhost \
        --shape "$shape" --ca-file "$CA" "${extra[@]}" "$f" >"$RUN/$key-send.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        kill "$RECV_PID" 2>/dev/null || true
        WHY="send exited $rc: $(tail -n 1 "$RUN/$key-send.log" | mask)"; return 1
    fi
    wait "$RECV_PID" || rc=$?
    [ "$rc" -eq 0 ] || { WHY="receive exited $rc: $(tail -n 1 "$RUN/$key-recv.log" | mask)"; return 1; }
    local files=("$dir"/* "$dir"/.[!.]*)
    local n=0 x
    for x in "${files[@]}"; do [ -e "$x" ] && n=$((n + 1)); done
    [ "$n" -eq 1 ] || { WHY="$n files in the receiver's folder (expected the saved file only)"; return 1; }
    SAVED=$(find "$dir" -type f | head -n 1)
    cmp -s "$f" "$SAVED" || { WHY="the saved file differs from the original"; return 1; }
}
mkdir -p "$RUN/files"
declare -A LINK=() STORE_OBJ=()
for s in $SERVERS; do
    for shape in $SHAPES; do
        key="$s-$shape"
        f="$RUN/files/$key café.txt"
        { echo "Grüße from send_file, $shape via $s, $(date -u)"; head -c 200000 /dev/urandom | base64; } >"$f"
        t=$(date +%s)
        if send_receive "$s" "$shape" "$f" "$key"; then
            how=$(sed -n 's/^saved [^:]*: //p' "$RUN/$key-recv.log" | tail -n 1)
            record "send → receive, shape $shape" "$s" "✓" "$(stat -c %s "$f") B identical as “$(basename "$SAVED")”; $how ($(( $(date +%s) - t )) s)"
            [ "$shape" != aesgcm ] || LINK[$s]="$RUN/$key.link"
        else
            record "send → receive, shape $shape" "$s" "✗" "$WHY"
            FAILED_LOGS+=("$RUN/$key-send.log" "$RUN/$key-recv.log")
        fi
    done
done

# The aesgcm key must appear in no log: ours, the servers'.
leaks=""
for s in "${!LINK[@]}"; do
    frag=$(sed -n '1s/.*#//p' "${LINK[$s]}")
    key_hex=${frag:24}
    for log in "$RUN"/*-send.log "$RUN"/*-recv.log "${SERVER_LOGS[@]}"; do
        [ -f "$log" ] && grep -qiF "$key_hex" "$log" && leaks="$leaks $(basename "$log")"
    done
done
for s in $SERVERS; do
    if [ -z "${LINK[$s]:-}" ]; then
        record "aesgcm key in no log (client, server)" "$s" "-" "no aesgcm share to check"
    elif [ -z "$leaks" ]; then
        record "aesgcm key in no log (client, server)" "$s" "✓" "key absent from send/receive output and the server's log"
    else
        record "aesgcm key in no log (client, server)" "$s" "✗" "found in:$leaks"
    fi
done

# --- profanity: /url save of the link the example sent; then a tampered object --------------------
# The stored object of an upload: the newest file of that size below the server's store.
stored_object() { # SERVER SIZE
    local root
    case "$1" in prosody) root="$RUN/prosody/data" ;; ejabberd) root="$EJ/upload" ;; esac
    find "$root" -type f -size "$2c" -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-
}
profanity_save() { # SESSION LINK-FILE OUT REGEX: types /url save; waits for REGEX on screen
    local sess=$1 link out=$3
    link=$(head -n 1 "$2")
    tm send-keys -t "$sess" -l "/url save $link \"$out\""
    tm send-keys -t "$sess" Enter
    # profanity 0.13 updates one line per URL: "Downloading '…': done", then, when the tag does
    # not match, "Downloading '…' failed: Failed to decrypt file (…)". The plaintext file is
    # written before that check.
    tmux_wait "$sess" "$4" 30 || true
    sleep 0.5
}
profanity_run() { # SERVER
    local s=$1 sess="profanity-$1" home="$RUN/profanity-$1" orig="$RUN/files/$1-aesgcm café.txt" obj size
    mkdir -p "$home"
    tm new-session -d -s "$sess" -x 250 -y 50 \
        "env -u XDG_CONFIG_HOME -u XDG_DATA_HOME HOME='$home' LANG=C.UTF-8 LC_ALL=C.UTF-8 profanity -l DEBUG 2>'$RUN/profanity-$s.err'"
    tmux_wait "$sess" 'Type /help' 20 || { WHY="profanity did not start"; return 1; }
    # An account with TLS policy "trust": profanity 0.13 also skips the certificate check of
    # its HTTPS downloads for such accounts (the store's certificate is from this run's CA).
    for cmd in "/account add bob@localhost" "/account set bob@localhost server 127.0.0.1" \
        "/account set bob@localhost port ${C2S[$s]}" "/account set bob@localhost tls trust" "/connect bob@localhost"; do
        tm send-keys -t "$sess" -l "$cmd"; tm send-keys -t "$sess" Enter; sleep 0.3
    done
    tmux_wait "$sess" 'Enter password' 20 || { WHY="no password prompt"; return 1; }
    tm send-keys -t "$sess" 'bobpw' Enter
    tmux_wait "$sess" 'logged in|Logged in|online' 30 || { WHY="profanity did not log in"; return 1; }
    tm send-keys -t "$sess" '/msg alice@localhost' Enter
    tmux_wait "$sess" 'alice@localhost' 10 || { WHY="no chat window"; return 1; }
    profanity_save "$sess" "${LINK[$s]}" "$RUN/profanity-$s-good.txt" "Saved to|failed"
    tm capture-pane -p -J -t "$sess" | mask >"$RUN/profanity-$s-good.screen"
    if ! cmp -s "$orig" "$RUN/profanity-$s-good.txt"; then
        WHY="the saved file is not the original: $(grep -E "ownload|failed|rror" "$RUN/profanity-$s-good.screen" | tail -n 1 | tr -s ' ')"
        FAILED_LOGS+=("$RUN/profanity-$s-good.screen")
        return 1
    fi
    record "profanity /url save of the example's aesgcm link" "$s" "✓" "$(stat -c %s "$orig") B identical (profanity: “$(grep -oE "': [a-z]+" "$RUN/profanity-$s-good.screen" | tail -n 1 | cut -c4-)”)"
    # Tamper: flip one byte of the stored object on the server's disk.
    size=$(( $(stat -c %s "$orig") + 16 ))
    obj=$(stored_object "$s" "$size")
    [ -n "$obj" ] || { WHY2="the stored object ($size B) was not found"; return 2; }
    printf '\xff' | dd of="$obj" bs=1 seek=1000 conv=notrunc status=none
    # In a window of its own: profanity updates its transfer lines by URL, per window.
    tm send-keys -t "$sess" '/msg carol@localhost' Enter
    tmux_wait "$sess" 'carol@localhost' 10 || true
    profanity_save "$sess" "${LINK[$s]}" "$RUN/profanity-$s-bad.txt" "Failed to decrypt|failed"
    tm capture-pane -p -J -t "$sess" | mask >"$RUN/profanity-$s-bad.screen"
    # Its console window too, in case the failure went there.
    tm send-keys -t "$sess" '/win 1' Enter; sleep 0.5
    tm capture-pane -p -J -t "$sess" | mask >>"$RUN/profanity-$s-bad.screen"
    local msg bytes
    msg=$(grep -E "Failed to decrypt|failed" "$RUN/profanity-$s-bad.screen" | tail -n 1 | sed 's/^[0-9:]* *//' | tr -s ' ' | cut -c1-110)
    if [ ! -e "$RUN/profanity-$s-bad.txt" ]; then bytes="no file written"
    elif cmp -s "$orig" "$RUN/profanity-$s-bad.txt"; then bytes="the ORIGINAL bytes came out"
    else bytes="it wrote $(stat -c %s "$RUN/profanity-$s-bad.txt") B that differ from the original ($(cmp "$orig" "$RUN/profanity-$s-bad.txt" 2>/dev/null | sed 's/.*differ: //'))"
    fi
    if [ -n "$msg" ]; then
        record "profanity /url save after one stored byte flipped" "$s" "✓" "refused: “$msg”; $bytes"
    else
        # Not a failure of this crate: what profanity 0.13.1 does, reported as seen.
        record "profanity /url save after one stored byte flipped" "$s" "⚠" "profanity reported no failure (“done”, “Saved to …”); $bytes"
        FAILED_LOGS+=("$RUN/profanity-$s-bad.screen")
    fi
    # The same tampered object through this crate: the example's decrypt must refuse it and
    # leave no file.
    local https
    https="https://$(head -n 1 "${LINK[$s]}" | sed -e 's#^aesgcm://##' -e 's/#.*//')"
    if ! curl -sS --fail --cacert "$CA" -o "$RUN/tampered-$s.enc" "$https" 2>"$RUN/tampered-$s.curl"; then
        record "send_file decrypt of the same tampered object" "$s" "✗" "GET failed: $(head -c 100 "$RUN/tampered-$s.curl")"
    elif "$BIN" decrypt --link-file "${LINK[$s]}" "$RUN/tampered-$s.enc" "$RUN/tampered-$s.out" >"$RUN/tampered-$s.log" 2>&1; then
        record "send_file decrypt of the same tampered object" "$s" "✗" "accepted"
    elif [ -e "$RUN/tampered-$s.out" ] || compgen -G "$RUN/.send_file-*" >/dev/null; then
        record "send_file decrypt of the same tampered object" "$s" "✗" "refused, but a file was left behind"
    else
        record "send_file decrypt of the same tampered object" "$s" "✓" "exit 1, nothing saved: “$(tail -n 1 "$RUN/tampered-$s.log" | sed 's/^send_file: error: //' | cut -c1-80)”"
    fi
    tm send-keys -t "$sess" '/quit' Enter
    return 0
}
for s in $SERVERS; do
    if [ -z "${LINK[$s]:-}" ]; then
        record "profanity /url save of the example's aesgcm link" "$s" "✗" "no aesgcm link (the aesgcm send failed)"
        continue
    fi
    WHY=""; WHY2=""; rc=0
    profanity_run "$s" || rc=$?
    if [ "$rc" -eq 1 ]; then
        record "profanity /url save of the example's aesgcm link" "$s" "✗" "$WHY"
        FAILED_LOGS+=("$RUN/profanity-$s.err")
        tm capture-pane -p -J -t "profanity-$s" 2>/dev/null | mask >"$RUN/profanity-$s.screen" || true
        FAILED_LOGS+=("$RUN/profanity-$s.screen")
    elif [ "$rc" -eq 2 ]; then
        record "profanity /url save after one stored byte flipped" "$s" "✗" "$WHY2"
    fi
done

# --- memory: encrypt-and-upload, download-and-decrypt of MEM_MIB under /usr/bin/time -v -----------
rss_kib() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }
mem_run() {
    local s=ejabberd f="$RUN/files/big-$MEM_MIB-MiB.bin" dir="$RUN/recv/memory" rc=0 t send_kib recv_kib secs
    truncate -s "${MEM_MIB}M" "$f"   # sparse: reads as zeros, costs no disk
    RECV_WAIT=1500 start_receiver "$s" "$dir" "$RUN/memory-recv.log" "$RUN/memory-recv.time" \
        || { record "memory: aesgcm send of $MEM_MIB MiB, peak RSS" "$s" "✗" "the receiver did not come online"; return; }
    t=$(date +%s)
    XMPP_PASSWORD=alicepw /usr/bin/time -v -o "$RUN/memory-send.time" timeout 1800 "$BIN" send --jid alice@localhost \
        --server "127.0.0.1:${C2S[$s]}" --to bob@localhost --shape aesgcm --ca-file "$CA" --link-out "$RUN/memory.link" \
        "$f" >"$RUN/memory-send.log" 2>&1 || rc=$?
    secs=$(( $(date +%s) - t ))
    send_kib=$(rss_kib "$RUN/memory-send.time")
    if [ "$rc" -ne 0 ]; then
        record "memory: aesgcm send of $MEM_MIB MiB, peak RSS" "$s" "✗" "send exited $rc: $(tail -n 1 "$RUN/memory-send.log" | mask)"
        kill "$RECV_PID" 2>/dev/null || true
        FAILED_LOGS+=("$RUN/memory-send.log")
        return
    fi
    if [ "${send_kib:-999999}" -lt "$RSS_LIMIT_KIB" ]; then
        record "memory: aesgcm send of $MEM_MIB MiB, peak RSS" "$s" "✓" "$send_kib KiB ($(( send_kib / 1024 )) MiB) < 32 MiB; encrypt + PUT in $secs s"
    else
        record "memory: aesgcm send of $MEM_MIB MiB, peak RSS" "$s" "✗" "$send_kib KiB ≥ 32 MiB"
    fi
    t=$(date +%s)
    wait "$RECV_PID" || rc=$?
    recv_kib=$(rss_kib "$RUN/memory-recv.time")
    if [ "$rc" -ne 0 ]; then
        record "memory: aesgcm receive of $MEM_MIB MiB, peak RSS" "$s" "✗" "receive exited $rc: $(tail -n 1 "$RUN/memory-recv.log" | mask)"
        FAILED_LOGS+=("$RUN/memory-recv.log")
    elif ! cmp -s "$f" "$(find "$dir" -type f | head -n 1)"; then
        record "memory: aesgcm receive of $MEM_MIB MiB, peak RSS" "$s" "✗" "the saved file differs"
    elif [ "${recv_kib:-999999}" -lt "$RSS_LIMIT_KIB" ]; then
        record "memory: aesgcm receive of $MEM_MIB MiB, peak RSS" "$s" "✓" "$recv_kib KiB ($(( recv_kib / 1024 )) MiB) < 32 MiB; identical after GET + decrypt"
    else
        record "memory: aesgcm receive of $MEM_MIB MiB, peak RSS" "$s" "✗" "$recv_kib KiB ≥ 32 MiB (identical)"
    fi
    rm -f "$f" "$dir"/*
    find "$EJ/upload" -type f -size +1M -delete 2>/dev/null || true
}
mem_run

for pid in "${PIDS[@]:0:2}"; do
    kill -0 "$pid" 2>/dev/null || { say "server process $pid died during the run"; FAILED=1; }
done
if [ "$FAILED" -eq 0 ]; then say "passed"; else say "FAILED"; fi
