#!/usr/bin/env bash
# The load tool: slot requests per second and p50/p99 latency with N concurrent XMPP clients
# (component/examples/load_driver.rs, each client a closed loop of IQs), through ejabberd 23.01
# and through Prosody 0.12, side by side in one run:
#   (a) xmpp-upload-component with its state in memory;
#   (b) xmpp-upload-component on PostgreSQL;
#   (c) the server's own upload module (ejabberd mod_http_upload, Prosody mod_http_file_share);
#   (d) XEP-0199 pings to our component: the floor of the hop (server + component, no work);
#   (b+delay) (b) with PostgreSQL behind a proxy that adds LOAD_DB_DELAY_MS (20) per round trip.
# Everything runs on 127.0.0.1 and stops by itself; every run is bounded by LOAD_SECONDS.
#
#   bash ci/load.sh                       # the full form: 100 clients, 10 s per measurement
#   LOAD_SECONDS=2 LOAD_CLIENTS=50 bash ci/load.sh    # the short form .ci/run uses
#
# Every form checks that every request to our component was answered, and answered without
# error (the servers' own modules' errors are reported, and their rate counts only successes). With
# LOAD_ASSERT=1 (the full form sets it) it also checks the targets: (a) >= 0.9 x (d) and
# >= 1.1 x (c) on both servers, (b) >= 0.8 x (d), (b+delay) >= 0.5 x (b) with no request over 1 s.
# Installs what it needs (Debian packages, a release build of the component); LOAD_KEEP=1 keeps
# the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=ci/lib.sh
. ci/lib.sh load

SECS=${LOAD_SECONDS:-10}
CLIENTS=${LOAD_CLIENTS:-100}
WARMUP=${LOAD_WARMUP:-2}
DELAY_MS=${LOAD_DB_DELAY_MS:-20}
ASSERT=${LOAD_ASSERT:-$([ "$SECS" -ge 10 ] && [ "$CLIENTS" -ge 100 ] && echo 1 || echo 0)}

apt_install prosody ejabberd postgresql curl python3
PG_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG_BIN/pg_ctl" ] || PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -n 1)")"

say "installing xmpp-upload-component (release) and building the load driver"
t=$(date +%s)
BIN=$(XMPP_UPLOAD_COMPONENT_PROFILE=release install_component)
cargo build --quiet --release -p xmpp-upload-component --example load_driver
DRIVER="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/load_driver"
[ -x "$BIN" ] && [ -x "$DRIVER" ] || { echo "load: binaries not found" >&2; exit 1; }
say "built in $(( $(date +%s) - t )) s"

RUN="$(mktemp -d /tmp/xmpp-upload-load.XXXXXX)"
chmod 755 "$RUN"
PIDS=()
PG_STARTED=0
COMPONENT_PID=
cleanup() {
    local rc=$?
    [ -n "$COMPONENT_PID" ] && stop_pids "$COMPONENT_PID"
    stop_pids "${PIDS[@]}"
    if [ "$PG_STARTED" = 1 ]; then
        su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$RUN/pg/data' -m fast stop" >/dev/null 2>&1 || true
    fi
    [ "$rc" -eq 0 ] || tail_logs 25 "$RUN"/component-*.log "$RUN/prosody.log" "$RUN/ejabberd/log/ejabberd.log" "$RUN/pg/log"
    keep_or_remove "$RUN" "$rc" "${LOAD_KEEP:-0}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_C2S P_COMP P_HTTP E_C2S E_COMP E_HTTP PG_PORT PROXY_PORT STORE_PORT OPS_PORT < <(free_ports 10)
mkdir -p "$RUN/secrets" && chmod 700 "$RUN/secrets"
secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$RUN/secrets/$1"; chmod 600 "$RUN/secrets/$1"; }
for s in component service store clients; do secret "$s"; done
COMPONENT_SECRET="$(cat "$RUN/secrets/component")"
CLIENT_PW="$(cat "$RUN/secrets/clients")"

# --- PostgreSQL (trust on loopback: a throw-away cluster) and the delaying proxy -------------
mkdir -p "$RUN/pg" && chown postgres "$RUN/pg"
su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$RUN/pg/data' -U postgres -A trust" >"$RUN/pg-initdb.log" 2>&1 \
    || { cat "$RUN/pg-initdb.log"; exit 1; }
su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$RUN/pg/data' -o '-p $PG_PORT -k $RUN/pg -c listen_addresses=127.0.0.1 -c max_connections=200' -l '$RUN/pg/log' -w start" >/dev/null
PG_STARTED=1
su postgres -s /bin/sh -c "psql -q -h '$RUN/pg' -p $PG_PORT -U postgres -c 'CREATE DATABASE xmpp_upload'" >/dev/null
python3 tests/e2e/delay_proxy.py --listen "$PROXY_PORT" --to "$PG_PORT" --delay-ms "$DELAY_MS" >"$RUN/proxy.log" 2>&1 &
PIDS+=("$!")
wait_port "$PROXY_PORT" 10 "$!"
say "PostgreSQL on $PG_PORT, +${DELAY_MS} ms proxy on $PROXY_PORT"

# --- Prosody: accounts written as internal_plain files, so 100 users cost nothing --------------
mkdir -p "$RUN/prosody/data/localhost/accounts"
sed -e "s#@RUN@#$RUN#g" -e "s#@C2S_PORT@#$P_C2S#g" -e "s#@COMPONENT_PORT@#$P_COMP#g" -e "s#@HTTP_PORT@#$P_HTTP#g" \
    -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" tests/e2e/load-prosody.cfg.lua > "$RUN/prosody.cfg.lua"
chmod 600 "$RUN/prosody.cfg.lua"
for i in $(seq 0 $(( CLIENTS - 1 ))); do
    printf 'return {\n\t["password"] = "%s";\n};\n' "$CLIENT_PW" > "$RUN/prosody/data/localhost/accounts/load$i.dat"
done
prosody -F --config "$RUN/prosody.cfg.lua" >"$RUN/prosody.log" 2>&1 &
P_PID=$!; PIDS+=("$P_PID")
wait_port "$P_C2S" 30 "$P_PID"
wait_port "$P_COMP" 10 "$P_PID"
say "Prosody $(dpkg-query -W -f="\${Version}" prosody) up, $CLIENTS users"

# --- ejabberd: users through mod_http_api ------------------------------------------------------
EJ="$RUN/ejabberd"
mkdir -p "$EJ/log" "$EJ/spool" "$EJ/share"
sed -e "s#@RUN@#$RUN#g" -e "s#@C2S_PORT@#$E_C2S#g" -e "s#@COMPONENT_PORT@#$E_COMP#g" -e "s#@HTTP_PORT@#$E_HTTP#g" \
    -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" tests/e2e/load-ejabberd.yml > "$EJ/ejabberd.yml"
chmod 600 "$EJ/ejabberd.yml"
start_ejabberd "$EJ" "$RUN/ejabberd-vm.log"
E_PID=$!; PIDS+=("$E_PID")
wait_port "$E_C2S" 60 "$E_PID"
wait_port "$E_COMP" 20 "$E_PID"
wait_port "$E_HTTP" 20 "$E_PID"
for i in $(seq 0 $(( CLIENTS - 1 ))); do
    code=$(curl -sS -o "$RUN/register.out" -w '%{http_code}' -X POST "http://127.0.0.1:$E_HTTP/api/register" \
        -H 'Content-Type: application/json' --data-binary @- <<EOF
{"user":"load$i","host":"localhost","password":"$CLIENT_PW"}
EOF
    )
    [ "$code" = 200 ] || { echo "load: register load$i: HTTP $code $(cat "$RUN/register.out")" >&2; exit 1; }
done
say "ejabberd $(dpkg-query -W -f="\${Version}" ejabberd) up, $CLIENTS users"

# --- our component ---------------------------------------------------------------------------
write_config() { # NAME COMPONENT_PORT DB(memory|postgres|slow)
    local db_section=""
    case $3 in
        postgres) db_section=$'[database]\nkind = "postgres"\n'"url = \"host=127.0.0.1 port=$PG_PORT user=postgres dbname=xmpp_upload\""$'\nnode = "load"' ;;
        slow) db_section=$'[database]\nkind = "postgres"\n'"url = \"host=127.0.0.1 port=$PROXY_PORT user=postgres dbname=xmpp_upload\""$'\nnode = "load"' ;;
    esac
    cat > "$RUN/$1.toml" <<EOF
[xmpp]
jid = "upload.localhost"
server = "127.0.0.1:$2"
component_secret_file = "$RUN/secrets/component"

[service]
secret_file = "$RUN/secrets/service"
max_file_size = 104857600
allow_domains = ["localhost"]

[http]
listen = "127.0.0.1:$STORE_PORT"
base_url = "http://127.0.0.1:$STORE_PORT/files/"
insecure_http = true

[ops]
listen = "127.0.0.1:$OPS_PORT"

[storage]
kind = "local"

[storage.local]
dir = "$RUN/store"
key_file = "$RUN/secrets/store"

$db_section

[log]
level = "warn"
EOF
}
start_component() { # NAME COMPONENT_PORT DB
    write_config "$1" "$2" "$3"
    : > "$RUN/component-$1.log"
    # Logs at warning, as the servers here: a line per slot is an operator's choice, not the
    # service's cost. Online = /healthz answers 200.
    "$BIN" --config "$RUN/$1.toml" >>"$RUN/component-$1.log" 2>&1 &
    COMPONENT_PID=$!
    for _ in $(seq 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OPS_PORT/healthz")" = 200 ] && return 0
        kill -0 "$COMPONENT_PID" 2>/dev/null || { echo "load: component $1 exited" >&2; cat "$RUN/component-$1.log" >&2; return 1; }
        sleep 0.1
    done
    echo "load: component $1 did not connect within 30 s" >&2
    return 1
}
stop_component() {
    stop_pids "$COMPONENT_PID"
    COMPONENT_PID=
}

# --- the measurements --------------------------------------------------------------------------
declare -A RATE P50 P99 MAX ERR ANS CPU_C CPU_S
# CPU seconds (user + system) a process has used so far, from /proc (clock ticks / CLK_TCK).
cpu_of() { # PID
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
drive() { # SERVER KEY C2S_PORT TO KIND
    local line srv_pid c0 s0 c1 s1
    if [ "$1" = prosody ]; then srv_pid=$P_PID; else srv_pid=$E_PID; fi
    c0=$(cpu_of "$COMPONENT_PID"); s0=$(cpu_of "$srv_pid")
    line=$("$DRIVER" --server "127.0.0.1:$3" --domain localhost --user-prefix load --password "$CLIENT_PW" \
        --clients "$CLIENTS" --seconds "$SECS" --warmup "$WARMUP" --to "$4" --kind "$5" --label "$1/$2" 2>"$RUN/driver-$1-$2.err") \
        || { cat "$RUN/driver-$1-$2.err" >&2; echo "load: driver failed for $1/$2" >&2; exit 1; }
    c1=$(cpu_of "$COMPONENT_PID"); s1=$(cpu_of "$srv_pid")
    say "$line"
    RATE[$1,$2]=$(sed -n 's/.* ok_rate=\([0-9.]*\)\/s.*/\1/p' <<<"$line")
    ANS[$1,$2]=$(sed -n 's/.* answered=\([0-9]*\) .*/\1/p' <<<"$line")
    ERR[$1,$2]=$(sed -n 's/.* errors=\([0-9]*\) .*/\1/p' <<<"$line")
    P50[$1,$2]=$(sed -n 's/.* p50=\([0-9.]*\)ms.*/\1/p' <<<"$line")
    P99[$1,$2]=$(sed -n 's/.* p99=\([0-9.]*\)ms.*/\1/p' <<<"$line")
    MAX[$1,$2]=$(sed -n 's/.* max=\([0-9.]*\)ms.*/\1/p' <<<"$line")
    # CPU time per request (µs) of our component and of the server: the run's CPU time (warm-up
    # included) scaled to the measured part. Where a request's cost goes.
    local n=$(( ${ANS[$1,$2]:-0} > 0 ? ${ANS[$1,$2]} : 1 ))
    CPU_C[$1,$2]=$(python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1e6 / int(sys.argv[3]) * float(sys.argv[4]) / (float(sys.argv[4]) + float(sys.argv[5]))))" "$c0" "$c1" "$n" "$SECS" "$WARMUP")
    CPU_S[$1,$2]=$(python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1e6 / int(sys.argv[3]) * float(sys.argv[4]) / (float(sys.argv[4]) + float(sys.argv[5]))))" "$s0" "$s1" "$n" "$SECS" "$WARMUP")
}
say "measuring: $CLIENTS clients, ${WARMUP} s warm-up + ${SECS} s per measurement"
for srv in prosody ejabberd; do
    if [ "$srv" = prosody ]; then c2s=$P_C2S; comp=$P_COMP; else c2s=$E_C2S; comp=$E_COMP; fi
    start_component "$srv-memory" "$comp" memory
    drive "$srv" d "$c2s" upload.localhost ping
    drive "$srv" a "$c2s" upload.localhost slot
    stop_component
    drive "$srv" c "$c2s" share.localhost slot
    start_component "$srv-postgres" "$comp" postgres
    drive "$srv" b "$c2s" upload.localhost slot
    stop_component
    start_component "$srv-postgres-slow" "$comp" slow
    drive "$srv" b+delay "$c2s" upload.localhost slot
    stop_component
done

# --- report ------------------------------------------------------------------------------------
FAILED=0
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'nan')" "$1" "$2"; }
check() { # OK? TEXT
    if [ "$1" = 1 ]; then say "  [ ok ] $2"; else say "  [FAIL] $2"; FAILED=1; fi
}
ge() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2" && echo 1 || echo 0; }
echo
printf '%-9s %-34s %10s %9s %9s %9s %7s %12s %12s\n' server measurement "ok/s" "p50 ms" "p99 ms" "max ms" errors "ours µs/req" "server µs/req"
for srv in prosody ejabberd; do
    for k in d a c b b+delay; do
        case $k in
            a) what="(a) ours, memory state" ;; b) what="(b) ours, PostgreSQL" ;;
            c) what="(c) the server's own module" ;; d) what="(d) pings to ours (the floor)" ;;
            b+delay) what="(b) with +${DELAY_MS} ms per DB round trip" ;;
        esac
        printf '%-9s %-34s %10s %9s %9s %9s %7s %12s %12s\n' "$srv" "$what" "${RATE[$srv,$k]}" "${P50[$srv,$k]}" \
            "${P99[$srv,$k]}" "${MAX[$srv,$k]}" "${ERR[$srv,$k]}" "${CPU_C[$srv,$k]}" "${CPU_S[$srv,$k]}"
    done
done
echo
for srv in prosody ejabberd; do
    for k in d a b b+delay; do
        [ "${ANS[$srv,$k]:-0}" -gt 0 ] && [ "${ERR[$srv,$k]:-1}" -eq 0 ] && ok=1 || ok=0
        check "$ok" "$srv $k: ${ANS[$srv,$k]:-0} requests answered, ${ERR[$srv,$k]:-?} errors"
    done
    # The server's own module is the reference, not under test: its errors are reported (the
    # rate counts only its successful answers), not failed on.
    [ "${ANS[$srv,c]:-0}" -gt 0 ] && ok=1 || ok=0
    check "$ok" "$srv c (the server's module): ${ANS[$srv,c]:-0} requests answered, ${ERR[$srv,c]:-?} of them errors"
    a_d=$(ratio "${RATE[$srv,a]}" "${RATE[$srv,d]}"); a_c=$(ratio "${RATE[$srv,a]}" "${RATE[$srv,c]}")
    b_d=$(ratio "${RATE[$srv,b]}" "${RATE[$srv,d]}"); s_b=$(ratio "${RATE[$srv,b+delay]}" "${RATE[$srv,b]}")
    say "$srv ratios: (a)/(d) $a_d, (a)/(c) $a_c, (b)/(d) $b_d, (b+delay)/(b) $s_b, (b+delay) max ${MAX[$srv,b+delay]} ms"
    if [ "$ASSERT" = 1 ]; then
        check "$(ge "$a_d" 0.9)" "$srv (a) >= 0.9 x (d): $a_d"
        check "$(ge "$a_c" 1.1)" "$srv (a) >= 1.1 x (c): $a_c"
        check "$(ge "$b_d" 0.8)" "$srv (b) >= 0.8 x (d): $b_d"
        check "$(ge "$s_b" 0.5)" "$srv (b+delay) >= 0.5 x (b): $s_b"
        check "$(ge 1000 "${MAX[$srv,b+delay]}")" "$srv (b+delay): no request over 1 s (max ${MAX[$srv,b+delay]} ms)"
    fi
done
[ "$FAILED" = 0 ] || { echo "load: FAILED" >&2; exit 1; }
say "load: passed"
