#!/usr/bin/env bash
# bench/pop3.sh: side-by-side POP3 download benchmark (issue 4, "Speed").
#
# Loads the same generated mail (bench/pop3load gen: mixed sizes, CRLF,
# lines starting with '.') into a private Dovecot (maildir, Debian's
# dovecot-pop3d) and a private `pillarbox serve`, both on loopback, then
# has clients download whole maildrops from each (bench/pop3load run):
# connect, USER/PASS, STAT, UIDL, LIST, RETR every message (checked
# against LIST and the generator), QUIT without DELE, so every round is
# repeatable. 1 client on 1 maildrop and 20 concurrent clients on 20
# maildrops (accounts). Prints msgs/s and MB/s of the RETR phase for both
# servers and the ratio. See bench/README.md ("POP3").
#
# Environment (all optional):
#   BENCH_MSGS=5000           messages in every maildrop
#   BENCH_CONC="1 20"         concurrent clients per run (each its own account)
#   BENCH_TARGETS="dovecot pillarbox"
#   BENCH_ROUNDS=5            warm rounds per mode (after one first, cold round)
#   BENCH_POP3_MODES="serial pipelined"
#                             serial: one RETR at a time; pipelined: up to
#                             BENCH_POP3_WINDOW RETRs in flight (PIPELINING)
#   BENCH_POP3_WINDOW=16
#   BENCH_POP3_TLS=plain      plain (both servers allow USER/PASS on loopback)
#                             or stls (STLS first, same certificate on both)
#   BENCH_SEED=1              generator seed
#   BENCH_SETTLE=1800         max seconds to wait for a server to go idle
#                             (Pillarbox indexes imported mail in the background)
#   BENCH_TIMEOUT=1800        max seconds per pop3load invocation
#   BENCH_TMPDIR=/var/tmp     where mail and indexes live (must be a real disk)
#   BENCH_KEEP_TMP=0          1: keep the work dir (configs, logs, mail)
#   BENCH_SKIP_INSTALL=0      1: do not apt-get install
#   BENCH_PORT_BASE=11110     POP3 ports: dovecot BASE, pillarbox BASE+1
#   BENCH_OUT=bench/results/pop3-<date>.txt
#   BENCH_CPUPROFILE          file: run `pillarbox serve --cpuprofile FILE`
#   PILLARBOX_BIN             use this binary instead of building ./cmd/pillarbox
#   POP3LOAD_BIN              use this driver instead of building ./bench/pop3load
#   BENCH_PILLARBOX_TOML      extra TOML appended to pillarbox.toml
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
LIB=$BENCH_DIR/lib
export BENCH_LIB=$LIB PYTHONDONTWRITEBYTECODE=1
# shellcheck source=lib/common.sh
. "$LIB/common.sh"
# shellcheck source=lib/dovecot.sh
. "$LIB/dovecot.sh"

MSGS=${BENCH_MSGS:-5000}
CONCS=${BENCH_CONC:-"1 20"}
TARGETS=${BENCH_TARGETS:-"dovecot pillarbox"}
ROUNDS=${BENCH_ROUNDS:-5}
MODES=${BENCH_POP3_MODES:-"serial pipelined"}
WINDOW=${BENCH_POP3_WINDOW:-16}
TLSMODE=${BENCH_POP3_TLS:-plain}
SEED=${BENCH_SEED:-1}
SETTLE=${BENCH_SETTLE:-1800}
TIMEOUT=${BENCH_TIMEOUT:-1800}
PORT_BASE=${BENCH_PORT_BASE:-11110}
PORT_DOVECOT=$PORT_BASE
PORT_PILLARBOX=$((PORT_BASE + 1))
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$BENCH_DIR/results/pop3-$STAMP.txt}
DOMAIN=bench.test
PASSWORD="bench-pw-$RANDOM$RANDOM"
NOBODY_UID=$(id -u nobody 2>/dev/null || echo 65534)
NOBODY_GID=$(id -g nobody 2>/dev/null || echo 65534)

WORK=""
PB_PID=""
LOAD=""
declare -A SKIPPED=()
declare -A NOTES=()

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [[ -n $PB_PID ]] && stop_pillarbox
  stop_dovecot
  if [[ -n $WORK && -d $WORK ]]; then
    if [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}

# users_for CONC: the accounts (maildrops) of the CONC-client run,
# disjoint between runs so each run's first round meets maildrops no
# session has opened, on both servers.
users_for() {
  local c=$1 k out=()
  for ((k = 1; k <= c; k++)); do out+=("c${c}u${k}@$DOMAIN"); done
  echo "${out[*]}"
}

all_users() {
  local c out=()
  for c in $CONCS; do out+=($(users_for "$c")); done
  echo "${out[*]}"
}

# ---------------------------------------------------------------- setup

build_driver() {
  if [[ -n ${POP3LOAD_BIN:-} ]]; then
    [[ -x $POP3LOAD_BIN ]] || die "POP3LOAD_BIN=$POP3LOAD_BIN is not executable"
    LOAD=$POP3LOAD_BIN
    return
  fi
  command -v go >/dev/null || die "go is required to build bench/pop3load (or set POP3LOAD_BIN)"
  log "building ./bench/pop3load"
  (cd "$REPO" && timeout 600 go build -o "$WORK/pop3load" ./bench/pop3load) >"$WORK/pop3load-build.log" 2>&1 ||
    { cat "$WORK/pop3load-build.log" >&2; die "go build ./bench/pop3load failed"; }
  LOAD=$WORK/pop3load
}

generate_mail() {
  GEN=$WORK/gen/Maildir
  log "generating $MSGS messages (seed $SEED)"
  "$LOAD" gen -dir "$GEN" -n "$MSGS" -seed "$SEED" 2>&1 | tee "$WORK/gen.log" >&2
  [[ ${PIPESTATUS[0]} -eq 0 ]] || die "pop3load gen failed"
  GEN_INFO=$(head -1 "$WORK/gen.log" | sed 's/^.*gen: //; s/, in .*$//')
}

# ---------------------------------------------------------------- dovecot

# dovecot_conf: Dovecot as shipped (pop3-login in high-security mode: one
# login process per connection; one pop3 process per connection) plus
# the private dirs, our port, and cleartext USER/PASS allowed.
dovecot_conf() {
  cat <<EOF
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
log_path = $DC_DIR/dovecot.log
protocols = pop3
listen = 127.0.0.1
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
protocol pop3 {
  mail_max_userip_connections = 100
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $PORT_DOVECOT
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
  if [[ $TLSMODE == stls ]]; then
    printf 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' "$WORK/tls/cert.pem" "$WORK/tls/key.pem"
  else
    echo "ssl = no"
  fi
}

setup_dovecot() {
  local hash
  hash=$("$LOAD" hash -password "$PASSWORD") || return 1
  dovecot_setup_users "$hash" "$GEN" $(all_users)
  dovecot_conf >"$DC_DIR/dovecot-pop3.conf"
  dovecot_start "$DC_DIR/dovecot-pop3.conf" "$PORT_DOVECOT"
}

# ---------------------------------------------------------------- pillarbox

PB_BIN=""
PB_CFG=""
PB_DIR=""

# pillarbox_prepare: find or build the binary; on failure print the reason.
pillarbox_prepare() {
  if [[ -n ${PILLARBOX_BIN:-} ]]; then
    [[ -x $PILLARBOX_BIN ]] || { echo "PILLARBOX_BIN=$PILLARBOX_BIN is not executable"; return 1; }
    return 0
  fi
  [[ -d $REPO/cmd/pillarbox ]] || { echo "no $REPO/cmd/pillarbox yet and PILLARBOX_BIN unset"; return 1; }
  log "building ./cmd/pillarbox"
  if ! (cd "$REPO" && timeout 600 go build -o "$WORK/pillarbox" ./cmd/pillarbox) \
    >"$WORK/pillarbox-build.log" 2>&1; then
    echo "go build ./cmd/pillarbox failed: $(grep -v '^#' "$WORK/pillarbox-build.log" | head -1)"
    return 1
  fi
}

# pillarbox_config: the issue 4 contract with POP3 on our port, USER/PASS
# allowed from loopback without STLS, every other listener off.
pillarbox_config() {
  cat <<EOF
hostname = "mx.$DOMAIN"
data_dir = "$PB_DIR"

[listen]
smtp = []
submission = []
submissions = []
imap = []
imaps = []
pop3 = ["127.0.0.1:$PORT_PILLARBOX"]
pop3s = []

[tls]
cert = "$WORK/tls/cert.pem"
key = "$WORK/tls/key.pem"

[pop3]
plaintext_loopback = true

[limits]
connections_per_ip = 100000
sessions = 100000
EOF
  [[ -n ${BENCH_PILLARBOX_TOML:-} ]] && printf '\n%s\n' "$BENCH_PILLARBOX_TOML"
  return 0
}

# pillarbox_start: config, domain, accounts, serve, then import the mail.
# On failure prints the reason on stdout.
pillarbox_start() {
  PB_DIR=$WORK/pillarbox-data
  PB_CFG=$PB_DIR/pillarbox.toml
  mkdir -p "$PB_DIR"
  local pb=("$PB_BIN" --config "$PB_CFG") u serve=(serve)
  pillarbox_config >"$PB_CFG"
  timeout 60 "${pb[@]}" config check </dev/null >"$PB_DIR/check.log" 2>&1 ||
    { echo "config check failed: $(tail -1 "$PB_DIR/check.log")"; return 1; }
  timeout 120 "${pb[@]}" domain add "$DOMAIN" </dev/null >"$PB_DIR/admin.log" 2>&1 ||
    { echo "domain add failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  for u in $(all_users); do
    echo "$PASSWORD" | timeout 120 "${pb[@]}" account add "$u" --password-stdin >>"$PB_DIR/admin.log" 2>&1 ||
      { echo "account add $u failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  done
  [[ -n ${BENCH_CPUPROFILE:-} ]] && serve+=(--cpuprofile "$BENCH_CPUPROFILE")
  "${pb[@]}" "${serve[@]}" </dev/null >"$PB_DIR/serve.log" 2>&1 &
  PB_PID=$!
  wait_port "$PORT_PILLARBOX" 30 "$PB_PID" ||
    { echo "serve does not listen on POP3 127.0.0.1:$PORT_PILLARBOX: $(grep -i 'pop3\|error' "$PB_DIR/serve.log" | tail -1 | cut -c1-200)"; return 1; }
  local t0=$SECONDS
  for u in $(all_users); do
    timeout "$TIMEOUT" "${pb[@]}" import "$u" --format maildir "$GEN" </dev/null >>"$PB_DIR/import.log" 2>&1 ||
      { echo "import into $u failed: $(tail -1 "$PB_DIR/import.log")"; return 1; }
  done
  NOTES[pillarbox-import]="$((SECONDS - t0)) s for $(wc -w <<<"$(all_users)") accounts"
}

stop_pillarbox() {
  [[ -n $PB_PID ]] || return 0
  kill -TERM "$PB_PID" 2>/dev/null
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$PB_PID" 2>/dev/null || break; sleep 0.1; done
  kill_tree "$PB_PID"
  wait "$PB_PID" 2>/dev/null
  PB_PID=""
}

# ---------------------------------------------------------------- runs

RAW=""

skip() {
  SKIPPED[$1]=$2
  log "$1: SKIPPED ($2)"
  echo "$1: SKIPPED ($2)" >>"$WORK/skipped.txt"
}

want() { [[ " $TARGETS " == *" $1 "* ]]; }
ok() { want "$1" && [[ -z ${SKIPPED[$1]:-} ]]; }

target_addr() { [[ $1 == dovecot ]] && echo "127.0.0.1:$PORT_DOVECOT" || echo "127.0.0.1:$PORT_PILLARBOX"; }
target_pid() { [[ $1 == dovecot ]] && dovecot_pid || echo "$PB_PID"; }

# cpu_ticks PID: user+system clock ticks of the process and its live
# descendants.
cpu_ticks() {
  python3 - "$1" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["BENCH_LIB"])
from measure import read_tree, descendants
t = 0
for p in descendants([int(sys.argv[1])], read_tree()):
    try:
        with open(f"/proc/{p}/stat") as f:
            x = f.read().rsplit(")", 1)[1].split()
        t += int(x[11]) + int(x[12])
    except (OSError, IndexError, ValueError):
        pass
print(t)
EOF
}

# settle TARGET: wait (up to BENCH_SETTLE s) until the server uses under
# 5% of a core over 3 s: Pillarbox indexes imported mail in the
# background, and a run must not race it.
settle() {
  local t=$1 pid a b t0=$SECONDS hz
  pid=$(target_pid "$t")
  [[ -n $pid ]] || return 0
  hz=$(getconf CLK_TCK)
  a=$(cpu_ticks "$pid")
  while ((SECONDS - t0 < SETTLE)); do
    sleep 3
    b=$(cpu_ticks "$pid")
    if (((b - a) * 100 < 3 * hz * 5)); then
      ((SECONDS - t0 > 3)) && NOTES[$t-settle]+="waited $((SECONDS - t0)) s for the server to go idle; "
      return 0
    fi
    a=$b
  done
  NOTES[$t-settle]+="still busy after $SETTLE s (BENCH_SETTLE); measured anyway; "
  log "$t: still busy after $SETTLE s, measuring anyway"
}

# drive TARGET USERS ARGS...: one pop3load run, JSON lines into RAW.
drive() {
  local target=$1 users
  users=$(tr ' ' ',' <<<"$2")
  shift 2
  sync
  log "run: $target ($(wc -w <<<"${users//,/ }") clients) $*"
  timeout "$TIMEOUT" "$LOAD" run -addr "$(target_addr "$target")" -tls "$TLSMODE" \
    -users "$users" -password "$PASSWORD" -label "$target" -pids "$(target_pid "$target")" \
    -msgs "$MSGS" -seed "$SEED" "$@" >>"$RAW" 2> >(tee -a "$WORK/pop3load.log" >&2)
  local rc=$?
  [[ $rc -eq 124 ]] && log "$target: run timed out after $TIMEOUT s"
  return $rc
}

# run_conc CONC: on the CONC maildrops of that run, the first (cold)
# round, then BENCH_ROUNDS warm rounds per mode. The servers take turns
# round by round (and swap who goes first each round), so a change in the
# machine's load hits both alike.
run_conc() {
  local conc=$1 users mode t r n=1 w failed=0 order=()
  users=$(users_for "$conc")
  for t in $TARGETS; do ok "$t" && order+=("$t"); done
  [[ ${#order[@]} -gt 0 ]] || return 0
  for t in "${order[@]}"; do settle "$t"; done
  for t in "${order[@]}"; do drive "$t" "$users" -rounds 1 -round0 0 || failed=1; done
  for mode in $MODES; do
    w=0
    [[ $mode == pipelined ]] && w=$WINDOW
    for ((r = 0; r < ROUNDS; r++)); do
      local turn=("${order[@]}")
      ((n % 2 == 1 && ${#order[@]} == 2)) && turn=("${order[1]}" "${order[0]}")
      for t in "${turn[@]}"; do
        drive "$t" "$users" -rounds 1 -round0 "$n" -window "$w" || failed=1
      done
      n=$((n + 1))
    done
  done
  return $failed
}

check_knobs() {
  [[ $MSGS =~ ^[0-9]+$ && $MSGS -gt 0 ]] || die "BENCH_MSGS must be a positive integer"
  [[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "BENCH_ROUNDS must be a positive integer"
  [[ $WINDOW =~ ^[0-9]+$ && $WINDOW -gt 0 ]] || die "BENCH_POP3_WINDOW must be a positive integer"
  [[ $TLSMODE == plain || $TLSMODE == stls ]] || die "BENCH_POP3_TLS must be plain or stls"
  local m
  for m in $MODES; do
    [[ $m == serial || $m == pipelined ]] || die "BENCH_POP3_MODES: unknown mode $m"
  done
  command -v python3 >/dev/null || die "python3 is required"
}

main() {
  check_knobs
  install_packages dovecot-core dovecot-pop3d openssl
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  PB_REV=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?')
  local base=${BENCH_TMPDIR:-/var/tmp}
  WORK=$(mktemp -d "$base/pillarbox-pop3bench.XXXXXX") || die "mktemp in $base failed"
  chmod 755 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  RAW=$WORK/results.jsonl
  : >"$RAW"
  : >"$WORK/skipped.txt"
  [[ $(stat -f -c %T "$WORK") == tmpfs ]] && log "WARNING: $WORK is on tmpfs: set BENCH_TMPDIR to a disk"
  local p
  for p in "$PORT_DOVECOT" "$PORT_PILLARBOX"; do
    port_free "$p" || die "127.0.0.1:$p is in use (set BENCH_PORT_BASE)"
  done
  build_driver
  make_cert
  generate_mail

  if want dovecot; then
    if [[ $EUID -ne 0 ]]; then
      skip dovecot "Dovecot's master must run as root"
    elif ! setup_dovecot; then
      skip dovecot "dovecot did not start (see above)"
    fi
  fi
  if want pillarbox; then
    local why
    if why=$(pillarbox_prepare); then
      PB_BIN=${PILLARBOX_BIN:-$WORK/pillarbox}
      why=$(mktemp "$WORK/why.XXXXXX")
      # In this shell (not a subshell) so that PB_PID is tracked by cleanup.
      if ! pillarbox_start >"$why"; then
        skip pillarbox "$(cat "$why")"
        stop_pillarbox
      fi
    else
      skip pillarbox "$why"
    fi
  fi

  local conc failed=0
  for conc in $CONCS; do
    run_conc "$conc" || failed=1
  done
  write_report
  return $failed
}

write_report() {
  mkdir -p "$(dirname "$OUT")"
  {
    echo "# Pillarbox POP3 side-by-side benchmark ($STAMP)"
    echo "# command: $CMDLINE"
    echo "# env: BENCH_MSGS=$MSGS BENCH_CONC=\"$CONCS\" BENCH_TARGETS=\"$TARGETS\" BENCH_ROUNDS=$ROUNDS BENCH_POP3_MODES=\"$MODES\" BENCH_POP3_WINDOW=$WINDOW BENCH_POP3_TLS=$TLSMODE BENCH_SEED=$SEED"
    echo "# mail per maildrop: $GEN_INFO; every client its own account (accounts: $(wc -w <<<"$(all_users)"))"
    echo "# host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), mail fs: $(stat -f -c %T "$WORK") ($(df --output=source "$WORK" | tail -1))"
    echo "# dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1), pillarbox $PB_REV (at the start)$([[ -n ${PILLARBOX_BIN:-} ]] && echo " (PILLARBOX_BIN=$PILLARBOX_BIN)")"
    echo "# load average: $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (2 shared cores: numbers are noisy)"
    local k
    for k in "${!NOTES[@]}"; do echo "# note $k: ${NOTES[$k]}"; done
    echo
    cat "$WORK/skipped.txt"
    [[ -s $WORK/skipped.txt ]] && echo
    python3 "$LIB/pop3_report.py" "$RAW"
  } >"$OUT"
  cp "$RAW" "${OUT%.txt}.jsonl"
  echo
  cat "$OUT"
  echo
  echo "results: $OUT"
}

case ${1:-} in
  -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "usage: bench/pop3.sh (no arguments; configure with BENCH_* variables, see --help)" >&2; exit 2 ;;
esac
CMDLINE=$(printf '%q ' "$0" "$@")
main "$@"
