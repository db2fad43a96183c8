#!/usr/bin/env bash
# Several instances of xmpp-upload-component on one PostgreSQL database and one S3 bucket,
# behind one ejabberd, all on 127.0.0.1:
#   PostgreSQL 15 (Debian) holding the quota ledger and the record of files
#   (examples/support/pg_state.rs), s3s-fs 0.14.1 (crates.io) as the bucket, ejabberd 23.01
#   (Debian) with ONE ejabberd_service listener for upload.localhost to which BOTH instances
#   connect with the same JID (ejabberd keeps a route per connection and picks one at random for
#   each stanza), and slixmpp clients (tests/e2e/multinode_client.py).
#
# Checks, each printed with its time:
#   0. tests/pg_state.rs against this PostgreSQL (atomic charges, retry times, exactly-once
#      deletions, reconnects)
#   1. 8 clients x 12 concurrent slot requests spread over both instances: the admitted bytes
#      never exceed the per-user and global quotas (and both instances answered)
#   2. slixmpp's own XEP-0363 upload through the S3-backed component, byte-identical; a p1
#      upload whose file ID resolves through both instances and whose stable link is served
#      by each instance's HTTP side
#   3. kill -9 of one instance during a slow PUT: no partial object is visible in the bucket
#      (an aborted PUT leaves nothing, a finished one appears whole), the other instance keeps
#      answering, the killed one restarts, reconnects and answers again
#   4. a real client, go-sendxmpp (STARTTLS), uploads through the S3-backed component:
#      the object in the bucket is byte-identical
#   5. retention on both instances at once (max age about a second): every recorded file is
#      deleted from S3 and from the record exactly once
#
# Installs what is missing (apt: postgresql ejabberd go-sendxmpp openssl curl; cargo install
# s3s-fs; pip: slixmpp in .venv). Every process it starts is stopped on exit; the run directory is removed unless the
# run failed or MULTINODE_KEEP=1. Secrets (component, service, S3, database password) live in
# files of the run directory, never on a command line.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" multinode

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
now_ms() { date +%s%3N; }
FAILED=0
RESULTS=()
result() { # STATUS NAME START_MS
    local ms=$(( $(now_ms) - $3 ))
    RESULTS+=("$(printf '%-5s %-70s %6d ms' "$1" "$2" "$ms")")
    say "$1: $2 ($ms ms)"
    [ "$1" = FAIL ] && FAILED=1
    return 0
}

# --- peers -------------------------------------------------------------------------------------
APT=()
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || APT+=(postgresql)
{ command -v erl >/dev/null 2>&1 && [ -n "$(ejabberd_libs)" ]; } || APT+=(ejabberd)
command -v go-sendxmpp >/dev/null 2>&1 || APT+=(go-sendxmpp)
command -v openssl >/dev/null 2>&1 || APT+=(openssl)
command -v curl >/dev/null 2>&1 || APT+=(curl)
apt_install "${APT[@]}"
PG_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG_BIN/pg_ctl" ] || PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -n 1)")"
say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), ejabberd $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || echo '?')"

ensure_s3s_fs

VENV="$ROOT/.venv"
ensure_slixmpp_venv "$VENV"

# --- build -------------------------------------------------------------------------------------
say "installing xmpp-upload-component (cargo install --path component) and building its PostgreSQL tests"
t=$(date +%s)
BUILT=$(install_component)
cargo test --quiet -p xmpp-upload-component --test pg_state --test s3_reconcile --no-run
[ -x "$BUILT" ] || { echo "multinode: $BUILT not found" >&2; exit 1; }
say "built in $(( $(date +%s) - t )) s"

# --- run directory, ports, secrets -------------------------------------------------------------
RUN="$(mktemp -d /tmp/xmpp-upload-multinode.XXXXXX)"
chmod 755 "$RUN"
# A copy: the instances are restarted later, and another build may replace the target's binary.
BIN="$RUN/xmpp-upload-component"
cp "$BUILT" "$BIN"
PIDS=()
PG_STARTED=0
cleanup() {
    local rc=$?
    stop_pids "${PIDS[@]}"
    if [ "$PG_STARTED" = 1 ]; then
        su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$RUN/pg/data' -m fast stop" >/dev/null 2>&1 || true
    fi
    [ "$rc" -eq 0 ] || tail_logs 25 "$RUN"/node-*.log "$RUN/ejabberd/log/ejabberd.log" "$RUN/s3s-fs.log" "$RUN/pg/log"
    keep_or_remove "$RUN" "$rc" "${MULTINODE_KEEP:-0}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r C2S COMP EJ_HTTP S3_PORT PG_PORT HTTP_A HTTP_B < <(free_ports 7)
say "ports: c2s $C2S, component $COMP, ejabberd http $EJ_HTTP, s3 $S3_PORT, postgres $PG_PORT, nodes http $HTTP_A/$HTTP_B"
mkdir -p "$RUN/secrets" && chmod 700 "$RUN/secrets"
secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$RUN/secrets/$1"; chmod 600 "$RUN/secrets/$1"; }
for s in component service s3 db; do secret "$s"; done
COMPONENT_SECRET="$(cat "$RUN/secrets/component")"
S3_ACCESS_KEY="MULTINODE$(date +%s)"
BUCKET=uploads

# --- PostgreSQL: trust on its socket for the set-up, a password (scram) over TCP -------------
t=$(now_ms)
mkdir -p "$RUN/pg" && chown postgres "$RUN/pg"
su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$RUN/pg/data' -U postgres --auth-local=trust --auth-host=scram-sha-256" >"$RUN/pg-initdb.log" 2>&1 \
    || { cat "$RUN/pg-initdb.log"; exit 1; }
su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$RUN/pg/data' -o '-p $PG_PORT -k $RUN/pg -c listen_addresses=127.0.0.1' -l '$RUN/pg/log' -w start" >/dev/null
PG_STARTED=1
# The role's password goes in through psql's standard input, never a command line.
{ printf "CREATE ROLE xmpp_upload LOGIN PASSWORD '%s';\n" "$(cat "$RUN/secrets/db")"
  printf 'CREATE DATABASE xmpp_upload OWNER xmpp_upload;\n'; } \
    | su postgres -s /bin/sh -c "psql -q -h '$RUN/pg' -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -d postgres" >/dev/null
DB_URL="host=127.0.0.1 port=$PG_PORT user=xmpp_upload dbname=xmpp_upload"
result ok "PostgreSQL up on 127.0.0.1:$PG_PORT (role with a password, scram over TCP)" "$t"

# --- check 0: the PostgreSQL state's own tests against this database -------------------------
t=$(now_ms)
# Through the socket (trust, as the superuser): the tests make and drop their own schemas.
if XMPP_UPLOAD_TEST_PG="host=$RUN/pg port=$PG_PORT user=postgres dbname=xmpp_upload" \
    cargo test --quiet -p xmpp-upload-component --test pg_state -- --include-ignored >"$RUN/pg_state-test.log" 2>&1; then
    result ok "0. component/tests/pg_state.rs on this PostgreSQL ($(grep -o '[0-9]* passed' "$RUN/pg_state-test.log" | head -n 1))" "$t"
else
    cat "$RUN/pg_state-test.log"
    result FAIL "0. component/tests/pg_state.rs on this PostgreSQL" "$t"
fi
# The S3 reconciliation against s3s-fs (the test starts its own on a free port).
t=$(now_ms)
if XMPP_UPLOAD_TEST_S3S_FS="$S3S_FS_BIN" \
    cargo test --quiet -p xmpp-upload-component --test s3_reconcile -- --include-ignored >"$RUN/s3_reconcile-test.log" 2>&1; then
    result ok "0b. component/tests/s3_reconcile.rs on s3s-fs (a PUT ending after the check is recorded, an orphan deleted)" "$t"
else
    cat "$RUN/s3_reconcile-test.log"
    result FAIL "0b. component/tests/s3_reconcile.rs on s3s-fs" "$t"
fi

# --- s3s-fs -------------------------------------------------------------------------------------
mkdir -p "$RUN/s3/$BUCKET"
# s3s-fs takes its keys as arguments only; this throwaway pair lives as long as the run.
"$S3S_FS_BIN" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" --secret-key "$(cat "$RUN/secrets/s3")" \
    "$RUN/s3" >"$RUN/s3s-fs.log" 2>&1 &
S3_PID=$!; PIDS+=("$S3_PID")
wait_port "$S3_PORT" 20 "$S3_PID"
say "s3s-fs up (pid $S3_PID), bucket $BUCKET"

# --- ejabberd -----------------------------------------------------------------------------------
EJ="$RUN/ejabberd"
mkdir -p "$EJ/log" "$EJ/spool"
make_localhost_cert "$RUN/certs" DNS:localhost
sed -e "s#@RUN@#$RUN#g" -e "s#@C2S_PORT@#$C2S#g" -e "s#@COMPONENT_PORT@#$COMP#g" -e "s#@HTTP_PORT@#$EJ_HTTP#g" \
    -e "s#@COMPONENT_SECRET@#$COMPONENT_SECRET#g" tests/e2e/multinode-ejabberd.yml > "$EJ/ejabberd.yml"
chmod 600 "$EJ/ejabberd.yml"
start_ejabberd "$EJ" "$RUN/ejabberd-vm.log"
EJ_PID=$!; PIDS+=("$EJ_PID")
wait_port "$C2S" 60 "$EJ_PID"
wait_port "$COMP" 20 "$EJ_PID"
wait_port "$EJ_HTTP" 20 "$EJ_PID"
CLIENT_PW="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
printf '%s' "$CLIENT_PW" > "$RUN/secrets/clients"; chmod 600 "$RUN/secrets/clients"
register() {
    local code
    code=$(curl -sS -o "$RUN/register.out" -w '%{http_code}' -X POST "http://127.0.0.1:$EJ_HTTP/api/register" \
        -H 'Content-Type: application/json' --data-binary @- <<EOF
{"user":"$1","host":"localhost","password":"$CLIENT_PW"}
EOF
    )
    [ "$code" = 200 ] || { echo "multinode: register $1: HTTP $code $(cat "$RUN/register.out")" >&2; exit 1; }
}
for u in alice bob user1 user2 user3 user4 user5 user6 user7 user8; do register "$u"; done
say "ejabberd up (pid $EJ_PID), 10 users registered"

# --- the two instances --------------------------------------------------------------------------
USER_QUOTA=1000000      # bytes per user per 24 h
GLOBAL_QUOTA=5000000    # bytes for everyone per 24 h
SLOT_SIZE=100000
write_config() { # NODE HTTP_PORT MAX_AGE_DAYS INTERVAL_SECS
    cat > "$RUN/$1.toml" <<EOF
[xmpp]
jid = "upload.localhost"
server = "127.0.0.1:$COMP"
component_secret_file = "$RUN/secrets/component"

[service]
secret_file = "$RUN/secrets/service"
max_file_size = 10485760
allow_domains = ["localhost"]
put_ttl_secs = 20
daily_quota = $USER_QUOTA
global_daily_quota = $GLOBAL_QUOTA
stable_links = true

[http]
listen = "127.0.0.1:$2"
base_url = "http://127.0.0.1:$2/files/"
insecure_http = true

[storage]
kind = "s3"

[storage.s3]
endpoint = "http://127.0.0.1:$S3_PORT"
bucket = "$BUCKET"
region = "us-east-1"
access_key_id = "$S3_ACCESS_KEY"
secret_access_key_file = "$RUN/secrets/s3"
path_style = true
insecure_http = true

[retention]
max_age_days = $3
interval_secs = $4

[database]
kind = "postgres"
url = "$DB_URL"
password_file = "$RUN/secrets/db"
node = "$1"

[log]
level = "info"
EOF
}
declare -A NODE_PID NODE_HTTP=([node-a]=$HTTP_A [node-b]=$HTTP_B)
start_node() { # NODE
    "$BIN" --config "$RUN/$1.toml" >>"$RUN/$1.log" 2>&1 &
    NODE_PID[$1]=$!; PIDS+=("$!")
}
online_count() { grep -c 'xmpp: online as' "$RUN/$1.log" 2>/dev/null || true; }
wait_online() { # NODE BEFORE
    for _ in $(seq 300); do
        [ "$(online_count "$1")" -gt "$2" ] && return 0
        kill -0 "${NODE_PID[$1]}" 2>/dev/null || { echo "multinode: $1 exited" >&2; return 1; }
        sleep 0.1
    done
    echo "multinode: $1 did not connect within 30 s" >&2
    return 1
}
t=$(now_ms)
for n in node-a node-b; do write_config "$n" "${NODE_HTTP[$n]}" 1 3600; : > "$RUN/$n.log"; start_node "$n"; done
wait_online node-a 0 && wait_online node-b 0
result ok "two instances online as upload.localhost on one ejabberd_service listener" "$t"

CLIENT=("$VENV/bin/python" tests/e2e/multinode_client.py --port "$C2S" --password-file "$RUN/secrets/clients" --workdir "$RUN")
count() { grep -c "$2" "$RUN/$1.log" 2>/dev/null || true; }

# --- check 1: concurrent quota ------------------------------------------------------------------
t=$(now_ms)
a0=$(count node-a 'slot issued to\|quota reached'); b0=$(count node-b 'slot issued to\|quota reached')
if "${CLIENT[@]}" quota --clients 8 --rounds 12 --size "$SLOT_SIZE" \
        --user-quota "$USER_QUOTA" --global-quota "$GLOBAL_QUOTA" >"$RUN/check1.log" 2>&1; then
    status=ok
else
    status=FAIL
fi
cat "$RUN/check1.log" | grep -v '^ADMITTED='
a1=$(( $(count node-a 'slot issued to\|quota reached') - a0 )); b1=$(( $(count node-b 'slot issued to\|quota reached') - b0 ))
say "answered: node-a $a1, node-b $b1"
{ [ "$a1" -gt 0 ] && [ "$b1" -gt 0 ]; } || status=FAIL
result "$status" "1. 96 concurrent slot requests from 8 clients over both nodes within the quotas" "$t"

# The global quota is used up now: a new day for the next checks (their uploads are charged).
psql_q() { su postgres -s /bin/sh -c "psql -qtA -h '$RUN/pg' -p $PG_PORT -U postgres -d xmpp_upload -c \"$1\""; }
psql_q "DELETE FROM xmpp_upload.xu_charges" >/dev/null

# --- check 2: upload through the S3 component, resolve and download through both ---------------
t=$(now_ms)
status=ok
"${CLIENT[@]}" upload --jid alice@localhost --size 300000 >"$RUN/check2.log" 2>&1 || status=FAIL
grep -v '^FILEID=\|^DOWNLOAD=' "$RUN/check2.log"
FILEID=$(sed -n 's/^FILEID=//p' "$RUN/check2.log")
LINK=$(sed -n 's/^DOWNLOAD=//p' "$RUN/check2.log")
if [ -n "$FILEID" ]; then
    a0=$(count node-a 'download URL issued to'); b0=$(count node-b 'download URL issued to')
    "${CLIENT[@]}" resolve --jid bob@localhost --fileid "$FILEID" --file "$RUN/p1-file.bin" --times 16 \
        >>"$RUN/check2.log" 2>&1 || status=FAIL
    tail -n 1 "$RUN/check2.log"
    a1=$(( $(count node-a 'download URL issued to') - a0 )); b1=$(( $(count node-b 'download URL issued to') - b0 ))
    say "file ID resolved by node-a $a1 times, node-b $b1 times"
    { [ "$a1" -gt 0 ] && [ "$b1" -gt 0 ]; } || status=FAIL
    # The stable link, through each instance's own HTTP side (the link names node-a's or
    # node-b's address; the path works on either).
    path="/${LINK#http://*/}"
    for n in node-a node-b; do
        code=$(curl -sS -L -o "$RUN/stable-$n.bin" -w '%{http_code}' "http://127.0.0.1:${NODE_HTTP[$n]}$path" || echo 000)
        if [ "$code" = 200 ] && cmp -s "$RUN/stable-$n.bin" "$RUN/p1-file.bin"; then
            say "  [ ok ] stable link through $n: 302 to S3, 200, byte-identical"
        else
            say "  [FAIL] stable link through $n: HTTP $code"; status=FAIL
        fi
    done
else
    status=FAIL
fi
result "$status" "2. slixmpp upload via S3; p1 file ID and stable link resolve through both nodes" "$t"

# --- check 3: kill -9 during an upload ----------------------------------------------------------
psql_q "DELETE FROM xmpp_upload.xu_charges" >/dev/null
t=$(now_ms)
status=ok
objects() { find "$RUN/s3/$BUCKET" -type f -name "$1" 2>/dev/null | wc -l; }
slow_put() { # FLAG_VALUE: abort | go
    local flag="$RUN/slowput.flag"
    rm -f "$flag" "$flag.half"
    "${CLIENT[@]}" slowput --jid alice@localhost --size 400000 --flag "$flag" >"$RUN/slowput.log" 2>&1 &
    local cpid=$!
    for _ in $(seq 300); do [ -f "$flag.half" ] && break; sleep 0.1; done
    [ -f "$flag.half" ] || { say "  [FAIL] the slow PUT did not get half-way"; status=FAIL; }
    if [ "$1" = abort ]; then
        kill -9 "${NODE_PID[node-a]}" 2>/dev/null || true
        wait "${NODE_PID[node-a]}" 2>/dev/null || true
        say "  node-a killed with SIGKILL half-way through a 400 kB PUT"
    fi
    local seen code get
    seen=$(objects big.bin)
    [ "$seen" = 0 ] && say "  [ ok ] half-way: no big.bin file in the bucket's directory" \
        || { say "  [FAIL] half-way: $seen big.bin file(s) in the bucket's directory"; status=FAIL; }
    # Through the S3 API too: the slot's stable link, on node-b's HTTP side, redirects to S3.
    get=$(sed -n 's/^GET=//p' "$RUN/slowput.log")
    code=$(curl -sS -L -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_B/${get#http://*/}" || echo 000)
    [ "$code" = 404 ] && say "  [ ok ] half-way: GET of the object answers 404 (not there)" \
        || { say "  [FAIL] half-way: GET of the object answers $code"; status=FAIL; }
    echo "$1" > "$flag"
    wait "$cpid" || true
}
slow_put abort
sleep 0.5
n=$(objects big.bin)
[ "$n" = 0 ] && say "  [ ok ] aborted PUT: still no big.bin object ($(sed -n 's/^PUT_STATUS=//p' "$RUN/slowput.log"))" \
    || { say "  [FAIL] aborted PUT left $n object(s)"; status=FAIL; }
"${CLIENT[@]}" requests --jid bob@localhost --times 10 >"$RUN/check3.log" 2>&1 || status=FAIL
cat "$RUN/check3.log"
say "  (node-b alone now: $(grep -c 'slot issued to bob' "$RUN/node-b.log") slots for bob in its log)"
before=$(online_count node-a)
start_node node-a
wait_online node-a "$before" || status=FAIL
a0=$(count node-a 'slot issued to')
"${CLIENT[@]}" requests --jid bob@localhost --times 16 >>"$RUN/check3.log" 2>&1 || status=FAIL
tail -n 1 "$RUN/check3.log"
a1=$(( $(count node-a 'slot issued to') - a0 ))
[ "$a1" -gt 0 ] && say "  [ ok ] node-a restarted and answered $a1 of 16 requests" \
    || { say "  [FAIL] node-a answers nothing after its restart"; status=FAIL; }
slow_put go
n=$(objects big.bin)
if [ "$n" = 1 ] && cmp -s "$(find "$RUN/s3/$BUCKET" -type f -name big.bin)" "$RUN/slowput.bin"; then
    say "  [ ok ] a finished PUT appears whole ($(sed -n 's/^PUT_STATUS=//p' "$RUN/slowput.log"))"
else
    say "  [FAIL] finished PUT: $n object(s)"; status=FAIL
fi
result "$status" "3. kill -9 during an upload: nothing partial, the other serves, restart" "$t"

# --- check 4: a real client (go-sendxmpp, STARTTLS) uploads through the S3-backed component ---
t=$(now_ms)
status=ok
mkdir -p "$RUN/home-go-sendxmpp"
printf 'username: alice@localhost\npassword: %s\n' "$CLIENT_PW" > "$RUN/secrets/sendxmpprc"
chmod 600 "$RUN/secrets/sendxmpprc"
head -c 123456 /dev/urandom > "$RUN/go-sendxmpp-file.bin"
# -n accepts the self-signed certificate; it discovers the service itself (disco#items/#info),
# uploads, and sends the GET URL to bob (kept offline by ejabberd).
if HOME="$RUN/home-go-sendxmpp" timeout 60 go-sendxmpp -f "$RUN/secrets/sendxmpprc" -j "127.0.0.1:$C2S" -n \
        -h "$RUN/go-sendxmpp-file.bin" bob@localhost >"$RUN/go-sendxmpp.log" 2>&1; then
    obj=$(find "$RUN/s3/$BUCKET" -type f -name go-sendxmpp-file.bin | head -n 1)
    if [ -n "$obj" ] && cmp -s "$obj" "$RUN/go-sendxmpp-file.bin"; then
        say "  [ ok ] go-sendxmpp $(dpkg-query -W -f='${Version}' go-sendxmpp 2>/dev/null): the object in the bucket is byte-identical"
    else
        say "  [FAIL] go-sendxmpp: no identical object in the bucket"; status=FAIL
    fi
else
    say "  [FAIL] go-sendxmpp exited non-zero: $(tail -n 1 "$RUN/go-sendxmpp.log")"; status=FAIL
fi
result "$status" "4. go-sendxmpp (STARTTLS) uploads through the S3-backed component" "$t"

# --- check 5: retention on both nodes at once ---------------------------------------------------
t=$(now_ms)
status=ok
# Stored files only: rows of slots whose upload never came (pending_until set) are not files;
# they leave the record when their PUT window ends, without a deletion.
stored="SELECT count(*) FROM xmpp_upload.xu_files WHERE pending_until IS NULL"
files_before=$(psql_q "$stored")
slots_before=$(psql_q "SELECT count(*) FROM xmpp_upload.xu_files WHERE pending_until IS NOT NULL")
objects_before=$(find "$RUN/s3/$BUCKET" -type f | wc -l)
say "  record: $files_before stored files (and $slots_before slots never uploaded); bucket: $objects_before objects"
for n in node-a node-b; do kill -TERM "${NODE_PID[$n]}" 2>/dev/null || true; done
for n in node-a node-b; do wait "${NODE_PID[$n]}" 2>/dev/null || true; done
for n in node-a node-b; do write_config "$n" "${NODE_HTTP[$n]}" 0.00001 1; done
start_node node-a; start_node node-b
for _ in $(seq 300); do
    [ "$(psql_q "$stored")" = 0 ] && [ "$(find "$RUN/s3/$BUCKET" -type f | wc -l)" = 0 ] && break
    sleep 0.1
done
sleep 1.5   # one more pass each: nothing left to delete twice
files_after=$(psql_q "$stored")
deletions=$(psql_q "SELECT count(*) FROM xmpp_upload.xu_deletions")
distinct=$(psql_q "SELECT count(DISTINCT key) FROM xmpp_upload.xu_deletions")
by_node=$(psql_q "SELECT string_agg(deleted_by || '=' || n, ' ') FROM (SELECT deleted_by, count(*) n FROM xmpp_upload.xu_deletions GROUP BY 1 ORDER BY 1) s")
logged=$(( $(count node-a 'retention: deleted') + $(count node-b 'retention: deleted') ))
objects_after=$(find "$RUN/s3/$BUCKET" -type f | wc -l)
say "  record: $files_after stored files left; $deletions deletions recorded ($distinct keys; $by_node); $logged logged; bucket: $objects_after objects"
if grep -q 'presign_delete is not in this version' "$RUN"/node-*.log; then
    say "  the library has no S3Store::presign_delete yet (issue 13 item 4): objects cannot be deleted"
    result SKIP "5. retention on both nodes: needs S3Store::presign_delete in the library" "$t"
else
    # Every object in the bucket (uploads confirmed before or found by the bucket walk at the
    # restart) deleted from S3 and recorded once.
    { [ "$files_after" = 0 ] && [ "$deletions" = "$objects_before" ] && [ "$distinct" = "$deletions" ] \
        && [ "$logged" = "$deletions" ] && [ "$objects_after" = 0 ]; } || status=FAIL
    result "$status" "5. retention on both nodes: each file deleted from S3 and the record once" "$t"
fi

# --- no secret in logs or command lines ---------------------------------------------------------
t=$(now_ms)
status=ok
for s in component service db clients; do
    v="$(cat "$RUN/secrets/$s")"
    if grep -qF "$v" "$RUN"/node-*.log; then say "  [FAIL] the $s secret is in a node log"; status=FAIL; fi
    for pid in "${NODE_PID[@]}"; do
        if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$v"; then say "  [FAIL] the $s secret is on a command line"; status=FAIL; fi
    done
done
grep -qE 'X-Amz-Signature|sig=' "$RUN"/node-*.log && { say "  [FAIL] a signed URL is in a node log"; status=FAIL; }
result "$status" "no secret or signed URL in the nodes' logs or command lines" "$t"

echo
echo "multinode: results (total $(( $(date +%s) - T0 )) s)"
printf '  %s\n' "${RESULTS[@]}"
exit "$FAILED"
