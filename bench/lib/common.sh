# bench/lib/common.sh: helpers shared by the bench scripts (sourced by
# smtp.sh and imap.sh).
# Needs BENCH_LIB (this directory) exported for kill_tree.

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
