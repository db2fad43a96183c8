#!/usr/bin/env bash
# Real XMPP clients that nobody here wrote upload through xmpp-upload-component on two real
# servers and two kinds of storage, all on 127.0.0.1:
#   servers: Prosody 0.12 (Debian) with `Component "upload.localhost"` and ejabberd 23.01 (Debian,
#            its Erlang VM in the foreground) with an `ejabberd_service` listener for
#            upload.localhost; each has a self-signed certificate for localhost (STARTTLS offered,
#            not required), users alice and bob, and NO upload service of its own, so the only one a
#            client can discover is ours (one component process per server).
#   storage: one pass per kind, with the same JID (upload.localhost) and the same servers:
#            "local": signed URLs served by the component's built-in HTTP store;
#            "s3": storage.kind = "s3" (tests/e2e/clients-component-s3.toml) on s3s-fs 0.14.1, an
#            S3 server that really checks SigV4 (path-style, presigned PUT and GET URLs; the PUT
#            signs Content-Length and Content-Type). Passes, not two components side by side:
#            go-sendxmpp and profanity take whichever upload service disco#items lists first, so
#            with two services neither could be pointed at the S3 one. Between passes the
#            component stops and the other kind connects as upload.localhost again.
#   clients: go-sendxmpp (`-h FILE`; once with a PNG, once with a text file, for which it sends
#            "text/plain; charset=utf-8"), profanity (`/sendfile`, driven through a private tmux
#            server), @xmpp/client from npm (tests/e2e/xmppjs_upload.mjs) and nbxmpp, Gajim's
#            library (tests/e2e/nbxmpp_upload.py, Debian's /usr/bin/python3).
# Each client uploads its own file and sends the GET URL to bob (a go-sendxmpp listener); the
# script downloads the URL bob received (which must be the one the client printed, where it
# prints one, and must point at our store, or at the bucket in the s3 pass) and compares it byte
# for byte with the original. The clients' HTTP requests pass through a transparent relay
# (tests/e2e/http_trace_proxy.py; in the s3 pass one in front of s3s-fs) that records request
# lines and headers, and each client's raw slot request is cut out of ejabberd's debug log into
# the run directory (the source of tests/fixtures/clients/c60-c64). In the s3 pass the object
# itself is checked in s3s-fs's folder: byte-identical, stored with the content type the client
# declared (s3s-fs's metadata sidecar; a presigned GET signs its method, so no HEAD through it),
# and after the pass no temporary part file and no object but the uploaded ones. Then two HTTP
# checks on the local store itself (CLIENTS_E2E_HTTP_EXTRAS=1, the default, with the local
# pass): a chunked PUT without Content-Length or Content-Type, and a Range resume (206 with the
# tail, 416 when unsatisfiable).
# Ends with a table: rows clients × storage, columns servers; exits non-zero on any failure.
#
# Installs what is missing (apt: prosody ejabberd go-sendxmpp profanity tmux python3-nbxmpp
# openssl curl, and nodejs/npm only if there is no node; npm: @xmpp/client into
# .cache/clients-e2e/npm, which needs Node >= 20.10; for the s3 pass, s3s-fs 0.14.1 with cargo
# install into ${S3S_FS_ROOT:-${CARGO_HOME:-~/.cargo}}, where ci/s3_e2e.sh, run before this
# script by .ci/run, puts it: about 2 minutes when missing) and skips what is there. Every
# process it starts is stopped on exit.
#
# Environment: CLIENTS_E2E_STORAGE (space-separated subset of "local s3", the default: the
# passes, in that order), CLIENTS_E2E_HTTP_EXTRAS (1 = run the two HTTP checks, default 1; they
# need the local pass), CLIENTS_E2E_CLIENTS (space-separated subset of
# "go-sendxmpp go-sendxmpp-text profanity xmppjs nbxmpp", the default),
# CLIENTS_E2E_KEEP=1 (keep the run directory), S3S_FS_ROOT (as in ci/s3_e2e.sh),
# CARGO_TARGET_DIR (honoured for the binary).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" clients-e2e

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HTTP_EXTRAS="${CLIENTS_E2E_HTTP_EXTRAS:-1}"
CLIENTS="${CLIENTS_E2E_CLIENTS:-go-sendxmpp go-sendxmpp-text profanity xmppjs nbxmpp}"
STORAGES="${CLIENTS_E2E_STORAGE:-local s3}"
SERVERS="prosody ejabberd"
for c in $CLIENTS; do
    case "$c" in go-sendxmpp|go-sendxmpp-text|profanity|xmppjs|nbxmpp) ;; *) echo "clients-e2e: unknown client $c" >&2; exit 2 ;; esac
done
for st in $STORAGES; do
    case "$st" in local|s3) ;; *) echo "clients-e2e: unknown storage $st (local, s3)" >&2; exit 2 ;; esac
done
[ -n "${STORAGES// /}" ] || { echo "clients-e2e: CLIENTS_E2E_STORAGE is empty" >&2; exit 2; }
has_storage() { [[ " $STORAGES " == *" $1 "* ]]; }
MAX_FILE_SIZE=$((10 * 1024 * 1024))
XMPPJS_VERSION=0.14.0
CACHE="$ROOT/.cache/clients-e2e"

# --- installs (each skipped when present) ------------------------------------------------------
APT=()
command -v prosody >/dev/null 2>&1 || APT+=(prosody)
{ command -v erl >/dev/null 2>&1 && [ -n "$(ejabberd_libs)" ]; } || APT+=(ejabberd)
command -v go-sendxmpp >/dev/null 2>&1 || APT+=(go-sendxmpp)
command -v profanity >/dev/null 2>&1 || APT+=(profanity)
command -v tmux >/dev/null 2>&1 || APT+=(tmux)
command -v openssl >/dev/null 2>&1 || APT+=(openssl)
command -v curl >/dev/null 2>&1 || APT+=(curl)
/usr/bin/python3 -c 'import nbxmpp' >/dev/null 2>&1 || APT+=(python3-nbxmpp)
command -v node >/dev/null 2>&1 || APT+=(nodejs npm)
{ command -v npm >/dev/null 2>&1 || [[ " ${APT[*]} " == *" npm "* ]]; } || APT+=(npm)
if [ "${#APT[@]}" -gt 0 ]; then
    # The package scripts of ejabberd and prosody try to start daemons; the image's policy-rc.d
    # (or the lack of systemd) stops that.
    apt_install "${APT[@]}"
else
    say "apt packages already installed"
fi
[ -n "$(ejabberd_libs)" ] || { echo "clients-e2e: ejabberd's Erlang libraries not found" >&2; exit 1; }

NPM_DIR="$CACHE/npm"
if [ -f "$NPM_DIR/node_modules/@xmpp/client/package.json" ] \
    && grep -q "\"version\": \"$XMPPJS_VERSION\"" "$NPM_DIR/node_modules/@xmpp/client/package.json"; then
    say "@xmpp/client $XMPPJS_VERSION already in $NPM_DIR"
else
    say "installing @xmpp/client@$XMPPJS_VERSION (npm) into $NPM_DIR"
    t=$(date +%s)
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --no-save --silent "@xmpp/client@$XMPPJS_VERSION" >/dev/null
    say "npm install done in $(( $(date +%s) - t )) s"
fi

# s3s-fs for the s3 pass: the pinned version, where ci/s3_e2e.sh and ci/multinode.sh install it.
if has_storage s3; then ensure_s3s_fs; fi

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
declare -A LABEL=([go-sendxmpp]=go-sendxmpp [go-sendxmpp-text]="go-sendxmpp, .txt" [profanity]=profanity
                  [xmppjs]=@xmpp/client [nbxmpp]=nbxmpp)
declare -A VER=(
    [prosody]="Prosody $(version prosody)"
    [ejabberd]="ejabberd $(version ejabberd)"
    [go-sendxmpp]="go-sendxmpp $(version go-sendxmpp)"
    [go-sendxmpp-text]="go-sendxmpp $(version go-sendxmpp), a text file"
    [profanity]="profanity $(version profanity)"
    [xmppjs]="@xmpp/client $XMPPJS_VERSION (node $(node --version))"
    [nbxmpp]="nbxmpp $(/usr/bin/python3 -c 'import nbxmpp; print(nbxmpp.__version__)') (python3-nbxmpp $(version python3-nbxmpp))"
    [local]="local: the component's built-in HTTP store (signed URLs)"
)
has_storage s3 && VER[s3]="s3: $("$S3S_FS_BIN" --version) (path-style, presigned PUT and GET URLs)"
for k in prosody ejabberd $CLIENTS $STORAGES; do say "${VER[$k]}"; done

# --- build: the installed binary, as an operator gets it ---------------------------------------
say "installing xmpp-upload-component (cargo install --path component)"
t=$(date +%s)
BIN=$(install_component)
[ -x "$BIN" ] || { echo "clients-e2e: $BIN not found" >&2; exit 1; }
say "built in $(( $(date +%s) - t )) s"

# --- run directory, clean-up, results table ----------------------------------------------------
RUN="$(mktemp -d /tmp/xmpp-upload-clients-e2e.XXXXXX)"
cp "$BIN" "$RUN/xmpp-upload-component"   # a private copy: other builds may replace the shared one
BIN="$RUN/xmpp-upload-component"
PIDS=()
TMUX_SOCK="$RUN/tmux.sock"
declare -A RESULT=()
ROWS=()
add_row() { # ROW: a table row, in the order of the first call (cells "- not run" until set)
    local r
    for r in "${ROWS[@]}"; do [ "$r" = "$1" ] && return 0; done
    ROWS+=("$1")
}
record() { # ROW SERVER MARK REASON
    add_row "$1"
    local why="${4//[$'\t\r\n']/ }"   # one line per cell
    RESULT["$1|$2"]="$3 $why"
}
print_table() { # rows × servers, each cell "✓ …" or "✗ why"
    # shellcheck disable=SC2086 # SERVERS is a word list
    print_results_table "$RUN/table.tsv" 'clients [storage] × servers' '- not run' $SERVERS
}
FAILED=0
FAILED_LOGS=()
cleanup() {
    local rc=$?
    if [ -S "$TMUX_SOCK" ]; then tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true; fi
    # Last started first: listeners and components go before the servers they talk to.
    stop_pids "${PIDS[@]}"
    print_table
    local logs=("$RUN"/*.log)
    if [ "$rc" -eq 0 ] && [ "$FAILED" -ne 0 ]; then
        # The set-up worked and some checks failed: their own logs and the components' suffice.
        rc=1
        logs=("${FAILED_LOGS[@]}" "$RUN"/component-*.log)
    fi
    if [ "$rc" -ne 0 ]; then
        for log in "${logs[@]}"; do
            case "$log" in *ejabberd-vm.log|*prosody.log) n=25 ;; *) n=40 ;; esac
            tail_logs "$n" "$log"
        done
    fi
    keep_or_remove "$RUN" "$rc" "${CLIENTS_E2E_KEEP:-0}"
    say "finished (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_log() { # FILE PATTERN SECONDS: poll a log for an extended regex
    local i
    for i in $(seq $(( $3 * 10 ))); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

read -r P_C2S P_COMP E_C2S E_COMP E_HTTP P_STORE E_STORE P_TRACE E_TRACE S3_PORT P_S3TRACE E_S3TRACE < <(free_ports 12)
declare -A C2S=([prosody]=$P_C2S [ejabberd]=$E_C2S)
declare -A COMP=([prosody]=$P_COMP [ejabberd]=$E_COMP)
declare -A STORE=([prosody]=$P_STORE [ejabberd]=$E_STORE)
# Relays by "SERVER|STORAGE": in front of the local store, or of s3s-fs (one per server).
declare -A TRACE=([prosody|local]=$P_TRACE [ejabberd|local]=$E_TRACE [prosody|s3]=$P_S3TRACE [ejabberd|s3]=$E_S3TRACE)
say "ports: prosody c2s $P_C2S component $P_COMP; ejabberd c2s $E_C2S component $E_COMP http $E_HTTP; stores $P_STORE/$E_STORE behind relays $P_TRACE/$E_TRACE; s3s-fs $S3_PORT behind relays $P_S3TRACE/$E_S3TRACE"
COMPONENT_SECRET="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"

# --- certificate: self-signed for localhost, for the clients that insist on STARTTLS -----------
make_localhost_cert "$RUN/certs" DNS:localhost,DNS:upload.localhost,IP:127.0.0.1

fill() { # TEMPLATE OUT C2S COMPONENT [HTTP]
    sed -e "s#@RUN@#$RUN#g" -e "s#@C2S_PORT@#$3#g" -e "s#@COMPONENT_PORT@#$4#g" \
        -e "s#@HTTP_PORT@#${5:-0}#g" -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" "$1" > "$2"
}

# --- Prosody: users alice and bob, our component's listener -------------------------------------
mkdir -p "$RUN/prosody/data"
fill tests/e2e/clients-prosody.cfg.lua "$RUN/prosody/prosody.cfg.lua" "$P_C2S" "$P_COMP"
for u in alice bob; do
    prosodyctl --config "$RUN/prosody/prosody.cfg.lua" register "$u" localhost "${u}pw" >>"$RUN/prosodyctl.log" 2>&1 \
        || { cat "$RUN/prosodyctl.log"; exit 1; }
done
prosody -F --config "$RUN/prosody/prosody.cfg.lua" >"$RUN/prosody.log" 2>&1 &
PIDS+=("$!"); PROSODY_PID=$!
wait_port "$P_C2S" 20 "$PROSODY_PID"
wait_port "$P_COMP" 20 "$PROSODY_PID"
say "Prosody up (pid $PROSODY_PID)"

# --- ejabberd: its VM in the foreground, everything in one folder, no Erlang distribution ------
EJ="$RUN/ejabberd"
mkdir -p "$EJ/log" "$EJ/spool"
fill tests/e2e/clients-ejabberd.yml "$EJ/ejabberd.yml" "$E_C2S" "$E_COMP" "$E_HTTP"
start_ejabberd "$EJ" "$RUN/ejabberd-vm.log"
PIDS+=("$!"); EJABBERD_PID=$!
wait_port "$E_C2S" 60 "$EJABBERD_PID"
wait_port "$E_COMP" 20 "$EJABBERD_PID"
wait_port "$E_HTTP" 20 "$EJABBERD_PID"
for u in alice bob; do
    code=$(curl -sS -o "$RUN/ejabberd-register.out" -w '%{http_code}' -X POST "http://127.0.0.1:$E_HTTP/api/register" \
        -H 'Content-Type: application/json' -d "{\"user\":\"$u\",\"host\":\"localhost\",\"password\":\"${u}pw\"}")
    [ "$code" = 200 ] || { echo "clients-e2e: ejabberd register $u: HTTP $code $(cat "$RUN/ejabberd-register.out")" >&2; exit 1; }
done
say "ejabberd up (pid $EJABBERD_PID), alice and bob registered"

# --- the recording relays, s3s-fs ----------------------------------------------------------------
declare -A BASE   # by "SERVER|STORAGE": where the GET URLs of that pass must point
start_relay() { # SERVER STORAGE TARGET-PORT
    /usr/bin/python3 tests/e2e/http_trace_proxy.py "${TRACE[$1|$2]}" "$3" "$RUN/http-$1-$2.jsonl" \
        >"$RUN/relay-$1-$2.log" 2>&1 &
    PIDS+=("$!")
    wait_port "${TRACE[$1|$2]}" 10 "$!"
}
BUCKET=uploads
if has_storage s3; then
    # A throwaway key pair for this run; s3s-fs takes it as arguments only (a test double; the
    # component gets its secret through the environment).
    S3_ACCESS_KEY="CLIENTSE2E$(date +%s)"
    S3_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    mkdir -p "$RUN/s3/$BUCKET"   # s3s-fs: a bucket is a folder below its root
    # RUST_LOG=info: start-up lines and every refused request (403 SignatureDoesNotMatch, …).
    RUST_LOG=info "$S3S_FS_BIN" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET" \
        "$RUN/s3" >"$RUN/s3s-fs.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$S3_PORT" 20 "$!"
    say "s3s-fs up (pid $!), bucket $BUCKET"
fi
for s in $SERVERS; do
    if has_storage local; then
        start_relay "$s" local "${STORE[$s]}"
        BASE[$s|local]="http://127.0.0.1:${TRACE[$s|local]}/upload/"
    fi
    if has_storage s3; then
        # The S3 endpoint the component signs for is the relay (SigV4 signs the Host header,
        # which the relay passes through), so every PUT and GET of the s3 pass is recorded too.
        start_relay "$s" s3 "$S3_PORT"
        BASE[$s|s3]="http://127.0.0.1:${TRACE[$s|s3]}/$BUCKET/$s/"
    fi
done

# --- our component: one process per server, one pass per storage kind ---------------------------
# Each pass starts it as upload.localhost with that storage and stops it at the end (SIGTERM: it
# must exit 0), so the clients discover it the way they always do.
declare -A COMPONENT_PID
start_component() { # SERVER STORAGE
    local s=$1 st=$2 args=() pid
    case "$st" in
    local)
        args=(--http-addr "127.0.0.1:${STORE[$s]}" --base-url "${BASE[$s|local]}"
              --store-dir "$RUN/store-$s" --insecure-http) ;;
    s3)
        sed -e "s#@S3_RELAY_PORT@#${TRACE[$s|s3]}#g" -e "s#@BUCKET@#$BUCKET#g" \
            -e "s#@S3_ACCESS_KEY@#$S3_ACCESS_KEY#g" -e "s#@SERVER@#$s#g" \
            tests/e2e/clients-component-s3.toml >"$RUN/component-$s-s3.toml"
        args=(--config "$RUN/component-$s-s3.toml") ;;
    esac
    # Secrets through the environment (never flags): the component's default variables.
    XMPP_UPLOAD_COMPONENT_SECRET="$COMPONENT_SECRET" \
    XMPP_UPLOAD_SERVICE_SECRET="$(head -c 24 /dev/urandom | base64)" \
    XMPP_UPLOAD_STORE_KEY="$(head -c 24 /dev/urandom | base64)" \
    XMPP_UPLOAD_S3_SECRET_KEY="${S3_SECRET:-}" \
    "$BIN" "${args[@]}" \
        --xmpp-addr "127.0.0.1:${COMP[$s]}" \
        --jid upload.localhost \
        --max-file-size "$MAX_FILE_SIZE" \
        --allow-domain localhost \
        --retention-days 1 \
        >"$RUN/component-$s-$st.log" 2>&1 &
    pid=$!
    PIDS+=("$pid"); COMPONENT_PID[$s]=$pid
    wait_log "$RUN/component-$s-$st.log" 'xmpp: online as' 30 \
        || { echo "clients-e2e: xmpp-upload-component ($st) did not connect to $s in 30 s" >&2; exit 1; }
    if [ "$st" = local ]; then wait_port "${STORE[$s]}" 10 "$pid"; fi
    say "xmpp-upload-component ($st storage) connected to $s (pid $pid)"
}
stop_component() { # SERVER STORAGE: SIGTERM, and it must exit 0 within 10 s
    local pid=${COMPONENT_PID[$1]} rc=0 p keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -KILL "$pid" 2>/dev/null; then say "xmpp-upload-component ($2) on $1 ignored SIGTERM"; FAILED=1; fi
    wait "$pid" 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || { say "xmpp-upload-component ($2) on $1 exited $rc after SIGTERM"; FAILED=1; }
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# --- bob: a listening client on each server; every uploader sends him the GET URL ---------------
mkdir -p "$RUN/home-go-sendxmpp"   # go-sendxmpp's HOME: the runner's own config stays out
# go-sendxmpp -l prints "TIME FROM: BODY" per message. Both servers keep offline messages, so
# nothing is lost if bob is still logging in when the first upload is done.
for s in $SERVERS; do
    HOME="$RUN/home-go-sendxmpp" go-sendxmpp -l -u bob@localhost -p bobpw -j "127.0.0.1:${C2S[$s]}" -n >"$RUN/bob-$s.log" 2>&1 &
    PIDS+=("$!")
done

# Each client uploads its own random PNG (a real image, so libmagic, mimetypes and a fixed
# table all say image/png) named "CLIENT-SERVER-STORAGE café.png": a mix-up between runs or
# passes cannot pass, and the space and the é show what each client does with names (go-sendxmpp
# replaces every non-ASCII letter and the space by "_", profanity the space; the others send them
# as they are). The ASCII key CLIENT-SERVER-STORAGE at the start of the name survives all of
# them: it finds the client's URL, PUT, slot request and S3 object in the logs and folders.
mkdir -p "$RUN/files"
make_png() { # PATH: 256×256 random RGB pixels, about 197 kB, incompressible
    /usr/bin/python3 - "$1" <<'PY'
import os, struct, sys, zlib
w = h = 256
raw = b"".join(b"\0" + os.urandom(w * 3) for _ in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
}

# The GET URL bob received for the file whose name starts with KEY, within 20 s.
bob_url() { # SERVER KEY
    local i url
    for i in $(seq 200); do
        url=$(grep -oE "https?://[^ ]*/$2[^/ ?]*(\\?[^ ]*)?" "$RUN/bob-$1.log" | tail -n 1 || true)
        [ -n "$url" ] && { printf '%s\n' "$url"; return 0; }
        sleep 0.1
    done
    return 1
}

served_type() { # HEADERS-FILE: the Content-Type of a GET answer
    tr -d '\r' <"$1" | sed -n 's/^[Cc]ontent-[Tt]ype: *//p' | tail -n 1
}
# GET URL byte for byte against FILE; WHY says what went wrong.
check_download() { # URL FILE OUT SERVER|STORAGE
    local code
    # The URL must be one of ours (our relay in front of our store or of s3s-fs, below the
    # bucket and this server's key prefix), not some other service's.
    case "$1" in "${BASE[$4]}"*) ;; *) WHY="GET URL is not below ${BASE[$4]}: ${1%%\?*}"; return 1 ;; esac
    code=$(curl -sS -o "$3" -D "$3.headers" -w '%{http_code}' "$1" 2>"$3.err") || { WHY="GET failed: $(head -c 200 "$3.err")"; return 1; }
    [ "$code" = 200 ] || { WHY="GET answered $code"; return 1; }
    cmp -s "$2" "$3" || { WHY="GET body differs from the uploaded file ($(stat -c %s "$3") of $(stat -c %s "$2") bytes)"; return 1; }
}

# What the client's PUT looked like, from the relay's record: "HTTP/1.1, Content-Type image/png,
# Content-Length" (or "chunked", "no Content-Type", slot headers it sent …).
put_summary() { # SERVER STORAGE KEY
    /usr/bin/python3 tests/e2e/client_evidence.py put "$RUN/http-$1-$2.jsonl" "$3"
}

# The content type the client declared in its slot request: the raw attribute from ejabberd's
# debug log (written asynchronously: polled), or on Prosody, which does not log stanzas, the type
# the component logged with the slot. "none" if the request named no type.
declared_type() { # SERVER STORAGE KEY
    local t="" i
    case "$1" in
    ejabberd)
        for i in $(seq 100); do
            t=$(/usr/bin/python3 tests/e2e/client_evidence.py declared-type ejabberd "$EJ/log/ejabberd.log" "$3")
            [ -n "$t" ] && break
            sleep 0.1
        done ;;
    *) t=$(/usr/bin/python3 tests/e2e/client_evidence.py declared-type component "$RUN/component-$1-$2.log" "$3") ;;
    esac
    printf '%s\n' "$t"
}
# The object the client's PUT left in s3s-fs's folder: exactly one for KEY, byte-identical to
# FILE, stored with the content type the client declared (the component signs that type into the
# PUT URL, and application/octet-stream when none was declared). Sets STORED_TYPE, or WHY.
s3_check() { # SERVER KEY FILE
    local objs n path ctype declared
    objs=$(/usr/bin/python3 tests/e2e/client_evidence.py s3-object "$RUN/s3" "$BUCKET" "$1/" "$2")
    n=$(printf '%s' "$objs" | grep -c . || true)
    [ "$n" -eq 1 ] || { WHY="$n objects for $2 in the bucket, expected 1"; return 1; }
    path=${objs%%$'\t'*}; ctype=${objs#*$'\t'}
    cmp -s "$3" "$path" || { WHY="the S3 object differs from the file ($(stat -c %s "$path") of $(stat -c %s "$3") bytes)"; return 1; }
    declared=$(declared_type "$1" s3 "$2")
    [ -n "$declared" ] || { WHY="no slot request for $2 found in the logs"; return 1; }
    [ "$declared" = none ] && declared=application/octet-stream
    [ "$ctype" = "$declared" ] || { WHY="the S3 object's content type is \"$ctype\", the client declared \"$declared\""; return 1; }
    STORED_TYPE=$ctype
}
# How the client's c2s stream was secured (the servers offer STARTTLS but do not require it).
# (Both go-sendxmpp runs use resources go-sendxmpp.RANDOM: on Prosody the later session is read.)
declare -A RESOURCE=([go-sendxmpp]=go-sendxmpp. [go-sendxmpp-text]=go-sendxmpp. [profanity]=profanity.
                     [xmppjs]=xmppjs-e2e [nbxmpp]=nbxmpp-e2e)
tls_summary() { # CLIENT SERVER KEY
    case "$2" in
    prosody) /usr/bin/python3 tests/e2e/client_evidence.py tls prosody "$RUN/prosody.log" "${RESOURCE[$1]}" ;;
    ejabberd) /usr/bin/python3 tests/e2e/client_evidence.py tls ejabberd "$EJ/log/ejabberd.log" "$3" ;;
    esac
}

# The private tmux server, in UTF-8 whatever the runner's locale (the file names have an é).
tm() { LC_ALL=C.UTF-8 tmux -u -S "$TMUX_SOCK" "$@"; }
tmux_wait() { # SESSION REGEX SECONDS: poll the pane (wrapped lines joined) for REGEX
    local i
    for i in $(seq $(( $3 * 10 ))); do
        tm capture-pane -p -J -t "$1" 2>/dev/null | grep -qE "$2" && return 0
        sleep 0.1
    done
    return 1
}

# Upload FILE with CLIENT through SERVER; sets URL to the GET URL the client got, or WHY.
# (Not in a subshell: WHY and URL are globals.)
upload_with() { # CLIENT SERVER STORAGE FILE LOG
    local c=$1 s=$2 st=$3 f=$4 log=$5 port=${C2S[$2]} rc=0 key="$1-$2-$3"
    case "$c" in
    go-sendxmpp|go-sendxmpp-text)
        # Always STARTTLS; -n accepts the self-signed certificate. Discovers the service by
        # disco#items/#info itself and sends the GET URL to bob.
        HOME="$RUN/home-go-sendxmpp" timeout 60 go-sendxmpp -u alice@localhost -p alicepw -j "127.0.0.1:$port" -n -h "$f" bob@localhost \
            >"$log" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { WHY="go-sendxmpp exited $rc: $(tail -n 1 "$log")"; return 1; }
        ;;
    profanity)
        # A terminal client: driven through a private tmux server, as a user would type.
        # A session and a HOME per pass: nothing (disco results, logs) carries over.
        local sess="profanity-$s-$st" home="$RUN/profanity-$s-$st"
        mkdir -p "$home"
        tm new-session -d -s "$sess" -x 250 -y 50 \
            "env -u XDG_CONFIG_HOME -u XDG_DATA_HOME HOME='$home' LANG=C.UTF-8 LC_ALL=C.UTF-8 profanity -l DEBUG 2>'$log'"
        tmux_wait "$sess" 'Type /help' 20 || { WHY="profanity did not start"; return 1; }
        tm send-keys -t "$sess" "/connect alice@localhost server 127.0.0.1 port $port tls trust" Enter
        tmux_wait "$sess" 'Enter password' 20 || { WHY="no password prompt"; return 1; }
        tm send-keys -t "$sess" 'alicepw' Enter
        # /sendfile only works once profanity has discovered the upload service.
        wait_log "$home/.local/share/profanity/logs/profanity.log" 'Received disco#info response from: upload\.localhost' 30 \
            || { WHY="profanity never got upload.localhost's disco#info"; tm capture-pane -p -J -t "$sess" >"$log.screen"; return 1; }
        tm send-keys -t "$sess" '/msg bob@localhost' Enter
        tmux_wait "$sess" 'bob@localhost' 10 || { WHY="no chat window for bob"; return 1; }
        # The path has a space: profanity takes it in double quotes.
        tm send-keys -t "$sess" -l "/sendfile \"$f\""
        tm send-keys -t "$sess" Enter
        # Done when the message with the URL is on screen; profanity says "… failed: …" or "…
        # not supported …" otherwise.
        tmux_wait "$sess" "me: https?://[^ ]*/$key|failed|not supported" 60 || true
        tm capture-pane -p -J -t "$sess" >"$log.screen"
        tm send-keys -t "$sess" '/quit' Enter
        grep -qE "me: https?://[^ ]*/$key" "$log.screen" \
            || { WHY="no upload message on screen: $(grep -E "Upload|failed|not supported" "$log.screen" | tail -n 1 | tr -s ' ')"; return 1; }
        ;;
    xmppjs)
        # @xmpp/client 0.14 needs Node >= 20.10 (Debian 12's own nodejs is 18).
        node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' \
            || { WHY="node $(node --version) is older than the 20.10 @xmpp/client $XMPPJS_VERSION needs"; return 1; }
        NODE_EXTRA_CA_CERTS="$RUN/certs/localhost.crt" timeout 60 node tests/e2e/xmppjs_upload.mjs \
            --modules "$NPM_DIR/node_modules" --jid alice@localhost --password alicepw --port "$port" \
            --to bob@localhost --service upload.localhost "$f" >"$log" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { WHY="$(tail -n 1 "$log")"; return 1; }
        ;;
    nbxmpp)
        timeout 60 /usr/bin/python3 tests/e2e/nbxmpp_upload.py --jid alice@localhost --password alicepw \
            --host "127.0.0.1:$port" --to bob@localhost --service upload.localhost "$f" >"$log" 2>&1 || rc=$?
        [ "$rc" -eq 0 ] || { WHY="$(tail -n 1 "$log")"; return 1; }
        ;;
    *) WHY="unknown client $c"; return 1 ;;
    esac
    local url
    url=$(bob_url "$s" "$key") || { WHY="bob never got a message with the GET URL"; return 1; }
    # Clients that print the URL they got must agree with what bob received.
    if grep -q '^GET ' "$log" && [ "$(grep '^GET ' "$log" | tail -n 1 | cut -d' ' -f2)" != "$url" ]; then
        WHY="the client's GET URL differs from the one bob received"; return 1
    fi
    URL="$url"
}

# --- the matrix: every client through our component on every server, one pass per storage ------
declare -A ORIG=()
for st in $STORAGES; do
    for c in $CLIENTS; do add_row "${LABEL[$c]} [$st]"; done
    if [ "$st" = s3 ]; then add_row "S3 bucket after the pass [s3]"; fi
done
add_row "HTTP chunked PUT [local]"; add_row "HTTP Range resume [local]"
run_pass() { # STORAGE
    local st=$1 s c f key t row cell
    for s in $SERVERS; do
        for c in $CLIENTS; do
            key="$c-$s-$st"
            row="${LABEL[$c]} [$st]"
            if [ "$c" = go-sendxmpp-text ]; then
                # go-sendxmpp sniffs the type (Go's http.DetectContentType): for UTF-8 text it
                # asks for, and PUTs, "text/plain; charset=utf-8", a type with a parameter.
                f="$RUN/files/$key café.txt"
                { echo "Grüße from $c via $s ($st), $(date -u)"; head -c 3000 /dev/urandom | base64; } >"$f"
            else
                f="$RUN/files/$key café.png"
                make_png "$f"
            fi
            ORIG["$c|$s|$st"]="$f"
            WHY=""; URL=""; STORED_TYPE=""
            t=$(date +%s)
            if upload_with "$c" "$s" "$st" "$f" "$RUN/$key.log" \
                && check_download "$URL" "$f" "$RUN/files/$key.got" "$s|$st" \
                && { [ "$st" != s3 ] || s3_check "$s" "$key" "$f"; }; then
                cell="$(stat -c %s "$f") B identical, served as $(served_type "$RUN/files/$key.got.headers")"
                if [ "$st" = s3 ]; then cell="$cell, stored as $STORED_TYPE"; fi
                record "$row" "$s" "✓" "$cell"
                say "$row via $s: ok in $(( $(date +%s) - t )) s"
            else
                [ -n "$WHY" ] || WHY="failed (see $key.log)"
                record "$row" "$s" "✗" "$WHY"
                say "$row via $s: FAILED: $WHY"
                FAILED=1
                FAILED_LOGS+=("$RUN/$key.log" "$RUN/$key.log.screen")
                if [ "$st" = s3 ] && [[ " ${FAILED_LOGS[*]} " != *" $RUN/s3s-fs.log "* ]]; then
                    FAILED_LOGS+=("$RUN/s3s-fs.log")
                fi
            fi
        done
    done
}
# After the s3 pass: s3s-fs holds no temporary part file (a PUT cut off or still being written),
# and every object below each server's prefix is the whole file of one upload of this pass.
bucket_check() {
    local s c n left obj name why orig
    left=$(/usr/bin/python3 tests/e2e/client_evidence.py s3-leftovers "$RUN/s3")
    for s in $SERVERS; do
        n=0; why=""
        while IFS= read -r -d '' obj; do
            n=$(( n + 1 )); name=${obj##*/}; orig=""
            for c in $CLIENTS; do
                [[ "$name" == "$c-$s-s3"* ]] && orig=${ORIG[$c|$s|s3]:-}
            done
            if [ -z "$orig" ]; then why="an object of no upload: ${obj#"$RUN/s3/"}"; break; fi
            cmp -s "$orig" "$obj" || { why="${obj#"$RUN/s3/"} is not the whole file ($(stat -c %s "$obj") of $(stat -c %s "$orig") bytes)"; break; }
        done < <(find "$RUN/s3/$BUCKET/$s" -type f -print0 2>/dev/null)
        [ -z "$left" ] || why="temporary part files left: $(printf '%s' "$left" | tr '\n' ' ')"
        if [ -z "$why" ]; then
            record "S3 bucket after the pass [s3]" "$s" "✓" "$n objects, each one upload's whole file; no temporary parts"
        else
            record "S3 bucket after the pass [s3]" "$s" "✗" "$why"
            FAILED=1
        fi
    done
}
# --- two HTTP checks on the store itself (issue 11, items 1 and 3) -------------------------------
# 1. A PUT streamed with Transfer-Encoding: chunked, no Content-Length and no Content-Type (as the
#    xmpp-rs `xmpp` crate sends it) to a slot bound to its size: 201, and GET returns the bytes.
# 2. A resumed download: `Range: bytes=N-` on a client's upload gives 206 with exactly the tail
#    (Conversations resumes this way); a range starting at the size gives 416.
# curl's status line and headers are printed whenever an answer is not the expected one.
show_answer() { # HEADERS-FILE [BODY-FILE]: what the store answered, indented
    if [ -s "$1" ]; then sed 's/^/      /' "$1" | tr -d '\r'; else echo "      (no answer headers)"; fi
    if [ -n "${2:-}" ] && [ -s "$2" ]; then head -c 300 "$2" | sed 's/^/      /'; echo; fi
    return 0
}
# curl's status code for a request; its error message, if any, goes to ERR-FILE ("000" then).
http_code() { # ERR-FILE CURL-ARGS…
    local err=$1; shift
    curl -sS -w '%{http_code}' "$@" 2>"$err" || true
}
http_extras() { # SERVER
    local s=$1
    local f="$RUN/files/chunked-$s.txt" slot code
    WHY=""
    head -c 150000 /dev/urandom | base64 >"$f"
    slot="$RUN/chunked-$s.slot"
    timeout 60 /usr/bin/python3 tests/e2e/nbxmpp_upload.py --slot-only --jid alice@localhost --password alicepw \
        --host "127.0.0.1:${C2S[$s]}" --to bob@localhost --service upload.localhost "$f" >"$slot" 2>"$slot.err" \
        || { record "HTTP chunked PUT [local]" "$s" "✗" "no slot: $(tail -n 1 "$slot.err")"; FAILED=1; return 0; }
    local put get
    put=$(sed -n 's/^PUT //p' "$slot"); get=$(sed -n 's/^GET //p' "$slot")
    local hdrs=()
    while IFS= read -r h; do hdrs+=(-H "$h"); done < <(sed -n 's/^HEADER //p' "$slot")
    # `-T -` reads stdin: curl streams it chunked and sends no Content-Length and no Content-Type;
    # `Expect:` drops the 100-continue curl would add, as the xmpp crate's reqwest sends none.
    code=$(http_code "$RUN/chunked-$s.err" -o "$RUN/chunked-$s.body" -D "$RUN/chunked-$s.headers" \
        "${hdrs[@]}" -H 'Expect:' -T - "$put" <"$f")
    if [ "$code" = 201 ] && check_download "$get" "$f" "$RUN/files/chunked-$s.got" "$s|local"; then
        record "HTTP chunked PUT [local]" "$s" "✓" "201, GET identical ($(put_summary "$s" local "chunked-$s"))"
    else
        local err; err=$(head -c 120 "$RUN/chunked-$s.err" 2>/dev/null | tr '\n' ' ' || true)
        [ "$code" = 201 ] || WHY="PUT answered $code, expected 201${err:+ ($err)}"
        record "HTTP chunked PUT [local]" "$s" "✗" "$WHY"
        say "chunked PUT via $s: $WHY; request: $(put_summary "$s" local "chunked-$s"); answer:"
        show_answer "$RUN/chunked-$s.headers" "$RUN/chunked-$s.body"
        FAILED=1
    fi

    # Range resume on the file nbxmpp (else any client) uploaded through this server.
    local src="" c
    for c in nbxmpp $CLIENTS; do
        [ "$c" = go-sendxmpp-text ] && continue
        [ -f "$RUN/files/$c-$s-local.got" ] && { src=$c; break; }
    done
    [ -n "$src" ] || { record "HTTP Range resume [local]" "$s" "✗" "no successful upload to resume"; FAILED=1; return 0; }
    local orig="${ORIG[$src|$s|local]}" url size n
    url=$(bob_url "$s" "$src-$s-local") || { record "HTTP Range resume [local]" "$s" "✗" "no GET URL for $src"; FAILED=1; return 0; }
    size=$(stat -c %s "$orig"); n=$(( size / 3 ))
    code=$(http_code "$RUN/range-$s.err" -o "$RUN/range-$s.body" -D "$RUN/range-$s.headers" \
        -H "Range: bytes=$n-" "$url")
    WHY=""
    if [ "$code" != 206 ]; then
        WHY="Range: bytes=$n- answered $code, expected 206"
    elif ! tail -c +$(( n + 1 )) "$orig" | cmp -s - "$RUN/range-$s.body"; then
        WHY="206 body is not the last $(( size - n )) bytes ($(stat -c %s "$RUN/range-$s.body" 2>/dev/null || echo 0) received)"
    elif ! tr -d '\r' <"$RUN/range-$s.headers" | grep -qi "^content-range: bytes $n-$(( size - 1 ))/$size\$"; then
        WHY="206 without Content-Range: bytes $n-$(( size - 1 ))/$size"
    fi
    if [ -z "$WHY" ]; then
        code=$(http_code "$RUN/range-$s.err" -o /dev/null -D "$RUN/range416-$s.headers" \
            -H "Range: bytes=$size-" "$url")
        [ "$code" = 416 ] || { WHY="Range: bytes=$size- answered $code, expected 416"; cp "$RUN/range416-$s.headers" "$RUN/range-$s.headers" 2>/dev/null || :; }
    fi
    if [ -z "$WHY" ]; then
        record "HTTP Range resume [local]" "$s" "✓" "206 with the last $(( size - n )) B, 416 past the end"
    else
        record "HTTP Range resume [local]" "$s" "✗" "$WHY"
        say "Range via $s: $WHY; answer:"; show_answer "$RUN/range-$s.headers"
        FAILED=1
    fi
}
# --- the passes -------------------------------------------------------------------------------
PASS_TIME=()
for st in $STORAGES; do
    t_pass=$(date +%s)
    for s in $SERVERS; do start_component "$s" "$st"; done
    run_pass "$st"
    if [ "$st" = s3 ]; then bucket_check; fi
    if [ "$st" = local ] && [ "$HTTP_EXTRAS" = 1 ]; then
        # (Called in a condition, so that nothing in it aborts the run: it records its own failures.)
        for s in $SERVERS; do http_extras "$s" || { record "HTTP chunked PUT [local]" "$s" "✗" "check aborted"; FAILED=1; }; done
    fi
    for s in $SERVERS; do stop_component "$s" "$st"; done
    PASS_TIME+=("$st $(( $(date +%s) - t_pass )) s")
done
say "passes: ${PASS_TIME[*]}"
if [ "$HTTP_EXTRAS" != 1 ] || ! has_storage local; then
    why="skipped (CLIENTS_E2E_HTTP_EXTRAS=0)"
    [ "$HTTP_EXTRAS" != 1 ] || why="skipped (no local pass in CLIENTS_E2E_STORAGE)"
    for s in $SERVERS; do
        record "HTTP chunked PUT [local]" "$s" "-" "$why"
        record "HTTP Range resume [local]" "$s" "-" "$why"
    done
fi

# --- what each client sent: stream security, the PUT's head, the raw slot request --------------
# ejabberd's debug log holds the raw bytes of each stanza it received (its logger writes
# asynchronously: poll); they are saved as slot-requests/CLIENT-STORAGE.xml, the source of the
# fixtures tests/fixtures/clients/c60-c64 (CLIENTS_E2E_KEEP=1 keeps them). The PUT is the one the
# relay of that pass saw: in the s3 pass, what reached s3s-fs.
mkdir -p "$RUN/slot-requests"
echo
echo "what each client sent:"
for FIRST_STORAGE in $STORAGES; do break; done
for c in $CLIENTS; do
    for s in $SERVERS; do
        # (The stream does not depend on the storage: read from the first pass on ejabberd.)
        printf '  %-18s via %-9s %s\n' "${LABEL[$c]}" "$s" "$(tls_summary "$c" "$s" "$c-$s-$FIRST_STORAGE")"
        for st in $STORAGES; do
            printf '  %-18s     PUT [%s]%*s %s\n' "" "$st" $(( 6 - ${#st} )) "" "$(put_summary "$s" "$st" "$c-$s-$st")"
        done
    done
    for st in $STORAGES; do
        for _ in $(seq 100); do
            /usr/bin/python3 tests/e2e/client_evidence.py slot-request "$EJ/log/ejabberd.log" "$c-ejabberd-$st" \
                >"$RUN/slot-requests/$c-$st.xml" || true
            [ -s "$RUN/slot-requests/$c-$st.xml" ] && break
            sleep 0.1
        done
        printf '  %-18s %-6s slot request: %s\n' "${LABEL[$c]}" "[$st]" "$(tr -d '\n' <"$RUN/slot-requests/$c-$st.xml")"
    done
done

# --- the processes must all still be there ------------------------------------------------------
for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { say "process $pid died during the run"; FAILED=1; }
done
if grep -F "$COMPONENT_SECRET" "$RUN"/component-*.log >/dev/null; then
    say "a component log contains the component secret"; FAILED=1
fi
if [ -n "${S3_SECRET:-}" ] && grep -F "$S3_SECRET" "$RUN"/component-*.log "$RUN"/http-*.jsonl >/dev/null; then
    say "a component log or HTTP record contains the S3 secret key"; FAILED=1
fi
if [ "$FAILED" -eq 0 ]; then say "passed"; else say "FAILED"; fi
