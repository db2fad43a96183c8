# shellcheck shell=bash
# Shared by the end-to-end scripts in ci/: sourced, not run.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" PREFIX    # PREFIX: of `say` lines (e2e, multinode, …)
#
# Sourcing starts the clock `say` reports (T0) and sets S3S_FS_VERSION and S3S_FS_BIN; it runs
# nothing else. The scripts set `set -euo pipefail` themselves.

SAY_PREFIX=${1:-$(basename "$0" .sh)}
T0=$(date +%s)

# A log line: "PREFIX [t+SECONDS since sourcing] MESSAGE".
say() { printf '%s [t+%ss] %s\n' "$SAY_PREFIX" "$(( $(date +%s) - T0 ))" "$*"; }

# --- installs (each skipped when already there) ------------------------------------------------

# The Debian packages PKG… that dpkg does not list as installed: apt-get update, then an install
# without recommends, quietly, as root or through sudo. A dpkg lock held by another apt is waited
# for (up to 10 minutes). Package scripts that would start daemons are stopped by the image's
# policy-rc.d (or the lack of systemd). Nothing happens, and nothing is said, when all are there.
apt_install() { # PKG…
    local p t missing=() sudo=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    say "installing (apt): ${missing[*]}"
    t=$(date +%s)
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    say "apt install done in $(( $(date +%s) - t )) s"
}

# slixmpp with its XEP-0363 extra (which brings aiohttp) in the virtualenv DIR (the scripts use
# .venv in the checkout), unless both import there already.
ensure_slixmpp_venv() { # DIR
    local venv=$1 t
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import slixmpp, aiohttp' 2>/dev/null; then
        say "slixmpp already in $venv"
        return 0
    fi
    say "installing slixmpp[xep-0363] into $venv"
    t=$(date +%s)
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's own python3 needs its venv module from a separate package.
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check 'slixmpp[xep-0363]'
    say "slixmpp installed in $(( $(date +%s) - t )) s"
}

# s3s-fs, the S3 server that really checks SigV4, pinned (later versions need a newer rustc), in
# one place for all scripts: ${S3S_FS_ROOT:-${CARGO_HOME:-~/.cargo}}/bin/s3s-fs.
S3S_FS_VERSION=0.14.1
S3S_FS_BIN=${S3S_FS_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/s3s-fs
# Installs it there with cargo install (about 2 minutes on 2 cores) unless S3S_FS_BIN reports the
# pinned version. The install builds in cargo's own temporary folder, not CARGO_TARGET_DIR.
ensure_s3s_fs() {
    local root=${S3S_FS_BIN%/bin/s3s-fs} t
    if [ -x "$S3S_FS_BIN" ] && [ "$("$S3S_FS_BIN" --version 2>/dev/null)" = "s3s-fs $S3S_FS_VERSION" ]; then
        say "using $S3S_FS_BIN ($S3S_FS_VERSION)"
        return 0
    fi
    say "installing s3s-fs $S3S_FS_VERSION into $root"
    t=$(date +%s)
    env -u CARGO_TARGET_DIR cargo install "s3s-fs@$S3S_FS_VERSION" --locked --features binary --root "$root" --force
    say "s3s-fs installed in $(( $(date +%s) - t )) s"
}

# --- ports and processes -----------------------------------------------------------------------

# Whether something listens on 127.0.0.1:PORT.
port_is_open() { # PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# N free TCP ports on 127.0.0.1, on one line: all bound at once, so they are distinct.
free_ports() { # N
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
EOF
}

# A random port from FROM to FROM+9999 that nothing listens on (50 tries); fails if none is found.
random_free_port() { # FROM
    local _ candidate
    for _ in $(seq 50); do
        candidate=$(( $1 + RANDOM % 10000 ))
        if ! port_is_open "$candidate"; then echo "$candidate"; return 0; fi
    done
    return 1
}

# Polls until 127.0.0.1:PORT accepts connections; fails (and says why) when process PID exits
# first or after SECONDS.
wait_port() { # PORT SECONDS PID
    local _
    for _ in $(seq $(( $2 * 10 ))); do
        if port_is_open "$1"; then return 0; fi
        kill -0 "$3" 2>/dev/null || { say "process $3 exited while waiting for port $1" >&2; return 1; }
        sleep 0.1
    done
    say "port $1 not open after $2 s" >&2
    return 1
}

# Stops processes started by this shell: SIGTERM to each, the last given first (so components go
# before the servers they talk to), then up to 5 s for each to exit before SIGKILL; reaps them.
stop_pids() { # PID…
    local i _ pid
    for (( i=$#; i>0; i-- )); do kill -TERM "${!i}" 2>/dev/null || true; done
    for pid in "$@"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# --- peers -------------------------------------------------------------------------------------

# The folder holding ejabberd-<version>/ebin (what ERL_LIBS needs); empty when there is none.
ejabberd_libs() {
    local d
    for d in /usr/lib/*/ejabberd-* /usr/lib/ejabberd-*; do
        [ -d "$d/ebin" ] && { dirname "$d"; return 0; }
    done
    return 0
}

# Starts ejabberd's Erlang VM in the background, in the foreground mode: config DIR/ejabberd.yml,
# everything else (log/, spool/, HOME) in DIR, no Erlang distribution (so no epmd and no
# ejabberdctl); its output goes to LOG. $! is the VM's pid afterwards; SIGTERM stops it.
start_ejabberd() { # DIR LOG
    local dir=$1 libs
    libs=$(ejabberd_libs)
    (
        cd "$dir" || exit 1
        exec env EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" EJABBERD_LOG_PATH="$dir/log/ejabberd.log" \
            ERL_CRASH_DUMP="$dir/log/erl_crash.dump" ERL_INETRC=/etc/ejabberd/inetrc ERL_LIBS="$libs" \
            HOME="$dir" erl +K true -noinput -mnesia dir "\"$dir/spool\"" -s ejabberd
    ) >"$2" 2>&1 &
}

# A self-signed certificate for CN=localhost (valid 2 days) with the subjectAltName SAN (e.g.
# "DNS:localhost"): DIR/localhost.key, DIR/localhost.crt and both in DIR/localhost.pem (mode 600),
# openssl's output in DIR/openssl.log.
make_localhost_cert() { # DIR SAN
    mkdir -p "$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -addext "subjectAltName=$2" \
        -keyout "$1/localhost.key" -out "$1/localhost.crt" >"$1/openssl.log" 2>&1 \
        || { cat "$1/openssl.log"; return 1; }
    cat "$1/localhost.crt" "$1/localhost.key" > "$1/localhost.pem"
    chmod 600 "$1/localhost.key" "$1/localhost.pem"
}

# --- after a run -------------------------------------------------------------------------------

# The last N lines of each FILE that exists, each under "--- last lines of FILE".
tail_logs() { # N FILE…
    local n=$1 log
    shift
    for log in "$@"; do
        if [ -f "$log" ]; then echo "--- last lines of $log"; tail -n "$n" "$log"; fi
    done
}

# Keeps the run directory DIR (and says where it is) when RC is not 0 or KEEP is 1; else removes it.
keep_or_remove() { # DIR RC KEEP
    if [ "$2" -ne 0 ] || [ "$3" = 1 ]; then
        echo "$SAY_PREFIX: logs kept in $1"
    else
        rm -rf "$1"
    fi
}

# Installs the upload service as an operator does (`cargo install --path component`), into
# target/ci-install/bin, sharing this checkout's build cache; prints the binary's path.
# XMPP_UPLOAD_COMPONENT_PROFILE=release installs an optimised build (the load tool does).
install_component() {
    local root target profile_flag=(--debug)
    root="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
    target="${CARGO_TARGET_DIR:-$root/target}"
    [ "${XMPP_UPLOAD_COMPONENT_PROFILE:-debug}" = release ] && profile_flag=()
    cargo install --quiet --locked --force "${profile_flag[@]}" --path "$root/component" \
        --target-dir "$target" --root "$target/ci-install/${XMPP_UPLOAD_COMPONENT_PROFILE:-debug}" >&2
    printf '%s\n' "$target/ci-install/${XMPP_UPLOAD_COMPONENT_PROFILE:-debug}/bin/xmpp-upload-component"
}

# Prints the results table of ROWS (array) × COLUMN… from the associative arrays RESULT
# ("row|column" → "✓ …" or "✗ why") and VER (column → header), columns padded by characters;
# the tab-separated text is kept in FILE. Empty cells read EMPTY.
print_results_table() { # FILE TITLE EMPTY COLUMN…
    local file=$1 title=$2 empty=$3 r c
    shift 3
    [ "${#ROWS[@]}" -gt 0 ] || return 0
    {
        printf '%s' "$title"
        for c in "$@"; do printf '\t%s' "${VER[$c]}"; done
        echo
        for r in "${ROWS[@]}"; do
            printf '%s' "$r"
            for c in "$@"; do printf '\t%s' "${RESULT[$r|$c]:-$empty}"; done
            echo
        done
    } >"$file"
    echo
    python3 - "$file" <<'PY' || cat "$file"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for n, r in enumerate(rows):
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    if n == 0:
        print("-+-".join("-" * x for x in w))
PY
    echo
}
