# bench/lib/common.sh: helpers shared by the bench scripts (sourced first
# by smtp.sh, imap.sh and pop3.sh): logging, process trees, ports,
# package install, the shared certificate, the work dir with its cleanup,
# skipped targets and the report file.
# Sets LIB (this directory, exported as BENCH_LIB for the Python
# helpers), BENCH_DIR, REPO, DOMAIN, NOBODY_UID/GID and STAMP. The
# scripts set OUT and TARGETS and define main, stop_servers (called by
# cleanup) and report_header (the "#" lines of the report).

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=$(dirname "$LIB")
REPO=$(dirname "$BENCH_DIR")
export BENCH_LIB=$LIB PYTHONDONTWRITEBYTECODE=1
DOMAIN=bench.test
NOBODY_UID=$(id -u nobody 2>/dev/null || echo 65534)
NOBODY_GID=$(id -g nobody 2>/dev/null || echo 65534)
STAMP=$(date +%Y%m%d-%H%M%S)

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# kill_tree PID...: SIGTERM the processes and their descendants, then
# SIGKILL whatever is left after 5 s. Only ever called with PIDs we started.
kill_tree() {
  [[ $# -gt 0 ]] || return 0
  python3 - "$@" <<'EOF'
import os, signal, sys, time
sys.path.insert(0, os.environ["BENCH_LIB"])
from measure import read_tree, descendants

def alive(p):
    try:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

roots = [int(p) for p in sys.argv[1:] if p]
pids = descendants(roots, read_tree())
for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
    for p in pids:
        try: os.kill(p, sig)
        except ProcessLookupError: pass
    end = time.monotonic() + wait
    while time.monotonic() < end:
        pids = {p for p in pids if alive(p)}
        if not pids: sys.exit(0)
        time.sleep(0.1)
EOF
}

port_free() {
  python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"
}

# wait_port PORT SECONDS [PID]: until something accepts on 127.0.0.1:PORT
# (fails early when PID has exited).
wait_port() {
  local port=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 10; i++)); do
    if python3 -c 'import socket,sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

pidfile_pid() { [[ -r $1 ]] && tr -d ' \n' <"$1"; }

# install_packages PKG...: apt-get install the missing ones (idempotent;
# nothing when BENCH_SKIP_INSTALL=1). apt-get update only when there are
# no package lists or the install fails without a fresh update.
# DEBCONF_PRESEED (if set) is fed to debconf-set-selections first.
install_packages() {
  [[ ${BENCH_SKIP_INSTALL:-0} == 1 ]] && return 0
  local pkgs=("$@") missing=() p
  for p in "${pkgs[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root: install them first"
  log "installing ${missing[*]}"
  [[ -n ${DEBCONF_PRESEED:-} ]] && { echo "$DEBCONF_PRESEED" | debconf-set-selections; }
  local updated=0
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    updated=1
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null >&2; then
    [[ $updated == 1 ]] && die "apt-get install failed"
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null >&2 ||
      die "apt-get install failed"
  fi
}

# make_cert: one self-signed ECDSA P-256 pair served by both servers, so
# both pay the same TLS handshake and cipher.
make_cert() {
  mkdir -p "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" -days 30 \
    -subj "/CN=mx.$DOMAIN" -addext "subjectAltName=DNS:mx.$DOMAIN" >"$WORK/tls/openssl.log" 2>&1 ||
    { cat "$WORK/tls/openssl.log" >&2; die "openssl req failed"; }
  chmod 644 "$WORK/tls/cert.pem" "$WORK/tls/key.pem"
}

# check_ports_free PORT...: die when something holds one of them.
check_ports_free() {
  local p
  for p in "$@"; do
    port_free "$p" || die "127.0.0.1:$p is in use (set BENCH_PORT_BASE)"
  done
}

# ---------------------------------------------------------------- work dir

WORK=""
RAW=""
LOAD_START=""

# make_work_dir NAME: LOAD_START (the load average now); WORK, a fresh
# BENCH_TMPDIR/NAME.XXXXXX (mode 755) that cleanup removes on exit; RAW
# (the results, JSON lines) and skipped.txt in it. Warns when WORK is on
# tmpfs.
make_work_dir() {
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  local base=${BENCH_TMPDIR:-/var/tmp}
  WORK=$(mktemp -d "$base/$1.XXXXXX") || die "mktemp in $base failed"
  chmod 755 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  RAW=$WORK/results.jsonl
  : >"$RAW"
  : >"$WORK/skipped.txt"
  if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    log "WARNING: $WORK is on tmpfs: fsync is free there, set BENCH_TMPDIR to a disk"
  fi
}

# cleanup (the EXIT trap): stop_servers (the script's), then remove WORK
# unless BENCH_KEEP_TMP=1; exits with the script's status.
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_servers
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------- targets

declare -A SKIPPED=()

# skip TARGET REASON: no more runs on TARGET; the reason goes in the report.
skip() {
  SKIPPED[$1]=$2
  log "$1: SKIPPED ($2)"
  echo "$1: SKIPPED ($2)" >>"$WORK/skipped.txt"
}

want() { [[ " $TARGETS " == *" $1 "* ]]; }
ok() { want "$1" && [[ -z ${SKIPPED[$1]:-} ]]; }

# ---------------------------------------------------------------- report

# report_host FS: the "# host:" line; FS names what lives in WORK.
report_host() {
  echo "# host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $1 fs: $(stat -f -c %T "$WORK") ($(df --output=source "$WORK" | tail -1))"
}

# report_load [ADVICE]: the "# load average:" line.
report_load() {
  echo "# load average: $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (2 shared cores: numbers are noisy${1:-})"
}

# write_report REPORT_PY: OUT is the script's report_header, the skipped
# targets and REPORT_PY's tables of RAW; RAW is kept beside it (.jsonl);
# then OUT is printed.
write_report() {
  mkdir -p "$(dirname "$OUT")"
  {
    report_header
    echo
    cat "$WORK/skipped.txt"
    [[ -s $WORK/skipped.txt ]] && echo
    python3 "$LIB/$1" "$RAW"
  } >"$OUT"
  cp "$RAW" "${OUT%.txt}.jsonl"
  echo
  cat "$OUT"
  echo
  echo "results: $OUT"
}

# bench_main ARGS...: the scripts' entry point. --help prints the
# script's header comment; any argument else is a usage error; no
# argument runs main (CMDLINE, for the report, is how it was called).
bench_main() {
  case ${1:-} in
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) echo "usage: bench/$(basename "$0") (no arguments; configure with BENCH_* variables, see --help)" >&2; exit 2 ;;
  esac
  CMDLINE=$(printf '%q ' "$0" "$@")
  main "$@"
}
