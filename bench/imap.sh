#!/usr/bin/env bash
# bench/imap.sh: side-by-side IMAP benchmark (issue 3, "Speed").
#
# Loads the same generated mail (bench/imapload gen) into a private Dovecot
# (maildir, Debian's package) and a private `pillarbox serve`, both on
# loopback, then drives the same IMAP workload at each (bench/imapload run):
# login, SELECT, FETCH 1:* (FLAGS UID ENVELOPE), 1,000 full bodies, SEARCH
# by header and by body text, STORE on 1,000 messages, 1,000 APPENDs, with
# 1 and 20 concurrent clients (each client its own account with its own
# INBOX). Then holds 10,000 connections in IDLE and reads each server's
# memory. Prints ops/s, MB/s, the ratio per step and the verdicts on the
# issue's targets. See bench/README.md ("IMAP") for what each number means.
#
# Environment (all optional):
#   BENCH_MSGS=10000          messages in every INBOX
#   BENCH_CONC="1 20"         concurrent clients per run (each its own account)
#   BENCH_TARGETS="dovecot pillarbox"
#   BENCH_IDLE=10000          connections held in IDLE (0: skip the idle test)
#   BENCH_IDLE_TARGETS        servers for the idle test (default: BENCH_TARGETS)
#   BENCH_LOGINS=20 BENCH_SELECTS=20 BENCH_FETCHES=5 BENCH_BODIES=1000
#   BENCH_STORES=1000 BENCH_APPENDS=1000 BENCH_HDR_SEARCH_ROUNDS=3
#   BENCH_BODY_SEARCH_ROUNDS=1   per-client counts of each step (see README)
#   BENCH_IMAP_TLS=starttls   starttls (both servers) or plain (Dovecot only:
#                             Pillarbox advertises LOGINDISABLED without TLS)
#   BENCH_SEED=1              generator seed
#   BENCH_TIMEOUT=1800        max seconds per run (one server, one concurrency)
#   BENCH_TMPDIR=/var/tmp     where mail and indexes live (must be a real disk)
#   BENCH_KEEP_TMP=0          1: keep the work dir (configs, logs, mail)
#   BENCH_SKIP_INSTALL=0      1: do not apt-get install
#   BENCH_PORT_BASE=11143     IMAP ports: dovecot BASE, pillarbox BASE+1
#   BENCH_OUT=bench/results/imap-<date>.txt
#   PILLARBOX_BIN             use this binary instead of building ./cmd/pillarbox
#   IMAPLOAD_BIN              use this driver instead of building ./bench/imapload
#   BENCH_PILLARBOX_TOML      extra TOML appended to pillarbox.toml (e.g. new limits)
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
LIB=$BENCH_DIR/lib
export BENCH_LIB=$LIB PYTHONDONTWRITEBYTECODE=1
# shellcheck source=lib/common.sh
. "$LIB/common.sh"
# shellcheck source=lib/dovecot.sh
. "$LIB/dovecot.sh"

MSGS=${BENCH_MSGS:-10000}
CONCS=${BENCH_CONC:-"1 20"}
TARGETS=${BENCH_TARGETS:-"dovecot pillarbox"}
IDLE=${BENCH_IDLE:-10000}
IDLE_TARGETS=${BENCH_IDLE_TARGETS:-$TARGETS}
TLSMODE=${BENCH_IMAP_TLS:-starttls}
SEED=${BENCH_SEED:-1}
TIMEOUT=${BENCH_TIMEOUT:-1800}
PORT_BASE=${BENCH_PORT_BASE:-11143}
PORT_DOVECOT=$PORT_BASE
PORT_PILLARBOX=$((PORT_BASE + 1))
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${BENCH_OUT:-$BENCH_DIR/results/imap-$STAMP.txt}
DOMAIN=bench.test
PASSWORD="bench-pw-$RANDOM$RANDOM"
NOBODY_UID=$(id -u nobody 2>/dev/null || echo 65534)
NOBODY_GID=$(id -g nobody 2>/dev/null || echo 65534)
RUN_FLAGS=(-logins "${BENCH_LOGINS:-20}" -selects "${BENCH_SELECTS:-20}"
  -fetches "${BENCH_FETCHES:-5}" -bodies "${BENCH_BODIES:-1000}" -stores "${BENCH_STORES:-1000}"
  -appends "${BENCH_APPENDS:-1000}" -header-search-rounds "${BENCH_HDR_SEARCH_ROUNDS:-3}"
  -body-search-rounds "${BENCH_BODY_SEARCH_ROUNDS:-1}")

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

# users_for CONC: the accounts of the CONC-client run (disjoint between
# runs, so every run starts on never-touched mailboxes on both servers).
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

# raise_nofile: the idle test needs IDLE descriptors and some in the
# driver and in the server (separate processes, each has its own limit).
raise_nofile() {
  local want=$((IDLE + 4096))
  if (($(ulimit -Hn) < want)); then
    ulimit -Hn "$want" 2>/dev/null ||
      log "WARNING: cannot raise the hard fd limit to $want (have $(ulimit -Hn)): the idle test may fail"
  fi
  ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
  log "fd limit: $(ulimit -Sn)"
}

build_driver() {
  if [[ -n ${IMAPLOAD_BIN:-} ]]; then
    [[ -x $IMAPLOAD_BIN ]] || die "IMAPLOAD_BIN=$IMAPLOAD_BIN is not executable"
    LOAD=$IMAPLOAD_BIN
    return
  fi
  command -v go >/dev/null || die "go is required to build bench/imapload (or set IMAPLOAD_BIN)"
  log "building ./bench/imapload"
  (cd "$REPO" && timeout 600 go build -o "$WORK/imapload" ./bench/imapload) >"$WORK/imapload-build.log" 2>&1 ||
    { cat "$WORK/imapload-build.log" >&2; die "go build ./bench/imapload failed"; }
  LOAD=$WORK/imapload
}

generate_mail() {
  GEN=$WORK/gen/Maildir
  log "generating $MSGS messages (seed $SEED)"
  "$LOAD" gen -dir "$GEN" -n "$MSGS" -seed "$SEED" 2>&1 | tee "$WORK/gen.log" >&2
  [[ ${PIPESTATUS[0]} -eq 0 ]] || die "imapload gen failed"
  GEN_INFO=$(head -1 "$WORK/gen.log" | sed 's/^.*gen: //')
}

# ---------------------------------------------------------------- dovecot

# dovecot_conf MODE: "throughput" is Dovecot's shipped defaults (imap-login
# in high-security mode: one login process per connection, which also
# proxies the TLS; one imap process per connection) plus the private
# dirs, our port and certificate. "idle" lets processes serve many
# connections (see README: 10,000 of each process would not fit in memory).
dovecot_conf() {
  local mode=$1
  cat <<EOF
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
log_path = $DC_DIR/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
protocol imap {
  mail_max_userip_connections = 100000
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT_DOVECOT
  }
  inet_listener imaps {
    port = 0
  }
EOF
  if [[ $mode == idle ]]; then
    cat <<EOF
  service_count = 0
  client_limit = 1000
  process_min_avail = $(nproc)
  process_limit = 64
}
service imap {
  service_count = 0
  client_limit = 50
  process_limit = 1024
}
default_client_limit = 20000
EOF
  else
    echo "}"
  fi
}

setup_dovecot() {
  local hash
  hash=$("$LOAD" hash -password "$PASSWORD") || return 1
  dovecot_setup_users "$hash" "$GEN" $(all_users)
}

start_dovecot() {
  local mode=$1
  dovecot_conf "$mode" >"$DC_DIR/dovecot-$mode.conf"
  dovecot_start "$DC_DIR/dovecot-$mode.conf" "$PORT_DOVECOT"
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

# pillarbox_config: the config contract of issue 2/3 with IMAP on our port
# and every other listener off. Limits that keys exist for are raised so
# that 10,000 connections from 127.0.0.1 fit; OPTIONAL keys are kept only
# when `pillarbox config check` accepts them (the IMAP config is being
# written: an unknown key is noted, not fatal).
OPTIONAL_LIMITS=()

pillarbox_config() {
  local limits=("$@")
  cat <<EOF
hostname = "mx.$DOMAIN"
data_dir = "$PB_DIR"

[listen]
smtp = []
submission = []
submissions = []
imap = ["127.0.0.1:$PORT_PILLARBOX"]
imaps = []
pop3 = []
pop3s = []

[tls]
cert = "$WORK/tls/cert.pem"
key = "$WORK/tls/key.pem"

[imap]
connections_per_account = 100000

[limits]
connections_per_ip = 100000
sessions = 100000
EOF
  local l
  for l in "${limits[@]}"; do echo "$l"; done
  [[ -n ${BENCH_PILLARBOX_TOML:-} ]] && printf '\n%s\n' "$BENCH_PILLARBOX_TOML"
  return 0
}

# pillarbox_start: config, domain, accounts, serve, then import the mail.
# On failure prints the reason on stdout.
pillarbox_start() {
  PB_DIR=$WORK/pillarbox-data
  PB_CFG=$PB_DIR/pillarbox.toml
  mkdir -p "$PB_DIR"
  local pb=("$PB_BIN" --config "$PB_CFG") keep=() l
  for l in ${OPTIONAL_LIMITS[@]+"${OPTIONAL_LIMITS[@]}"}; do
    pillarbox_config "${keep[@]}" "$l" >"$PB_CFG"
    if timeout 60 "${pb[@]}" config check </dev/null >"$PB_DIR/check.log" 2>&1; then
      keep+=("$l")
    else
      NOTES[pillarbox]+="config key limits.${l%% *} not accepted ($(tail -1 "$PB_DIR/check.log")); "
    fi
  done
  pillarbox_config ${keep[@]+"${keep[@]}"} >"$PB_CFG"
  timeout 60 "${pb[@]}" config check </dev/null >"$PB_DIR/check.log" 2>&1 ||
    { echo "config check failed: $(tail -1 "$PB_DIR/check.log")"; return 1; }
  timeout 120 "${pb[@]}" domain add "$DOMAIN" </dev/null >"$PB_DIR/admin.log" 2>&1 ||
    { echo "domain add failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  local u
  for u in $(all_users); do
    echo "$PASSWORD" | timeout 120 "${pb[@]}" account add "$u" --password-stdin >>"$PB_DIR/admin.log" 2>&1 ||
      { echo "account add $u failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  done
  "${pb[@]}" serve </dev/null >"$PB_DIR/serve.log" 2>&1 &
  PB_PID=$!
  wait_port "$PORT_PILLARBOX" 30 "$PB_PID" ||
    { echo "serve does not listen on IMAP 127.0.0.1:$PORT_PILLARBOX: $(grep -i 'imap' "$PB_DIR/serve.log" | tail -1 | cut -c1-200)"; return 1; }
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

# drive TARGET MODE ARGS...: one imapload run/idle, JSON lines into RAW.
drive() {
  local target=$1 mode=$2
  shift 2
  local users
  users=$(tr ' ' ',' <<<"$1")
  shift
  sync
  log "run: $mode $target ($(wc -w <<<"${users//,/ }") accounts) $*"
  timeout "$TIMEOUT" "$LOAD" "$mode" -addr "$(target_addr "$target")" -tls "$TLSMODE" \
    -users "$users" -password "$PASSWORD" -label "$target" -pids "$(target_pid "$target")" \
    "$@" >>"$RAW" 2> >(tee -a "$WORK/imapload.log" >&2)
  local rc=$?
  [[ $rc -eq 124 ]] && log "$target: $mode timed out after $TIMEOUT s"
  return $rc
}

main() {
  [[ $MSGS =~ ^[0-9]+$ && $MSGS -gt 0 ]] || die "BENCH_MSGS must be a positive integer"
  [[ $TLSMODE == starttls || $TLSMODE == plain ]] || die "BENCH_IMAP_TLS must be starttls or plain"
  command -v python3 >/dev/null || die "python3 is required"
  install_packages dovecot-core dovecot-imapd openssl
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  local base=${BENCH_TMPDIR:-/var/tmp}
  WORK=$(mktemp -d "$base/pillarbox-imapbench.XXXXXX") || die "mktemp in $base failed"
  chmod 755 "$WORK"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  RAW=$WORK/results.jsonl
  : >"$RAW"
  : >"$WORK/skipped.txt"
  [[ $(stat -f -c %T "$WORK") == tmpfs ]] && log "WARNING: $WORK is on tmpfs: fsync is free there, set BENCH_TMPDIR to a disk"
  local p
  for p in "$PORT_DOVECOT" "$PORT_PILLARBOX"; do
    port_free "$p" || die "127.0.0.1:$p is in use (set BENCH_PORT_BASE)"
  done
  raise_nofile
  build_driver
  make_cert
  generate_mail

  if want dovecot; then
    if [[ $EUID -ne 0 ]]; then
      skip dovecot "Dovecot's master must run as root"
    elif ! setup_dovecot || ! start_dovecot throughput; then
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

  local conc t failed=0
  for conc in $CONCS; do
    for t in $TARGETS; do
      ok "$t" || continue
      drive "$t" run "$(users_for "$conc")" -msgs "$MSGS" -seed "$SEED" "${RUN_FLAGS[@]}" || failed=1
    done
  done

  if ((IDLE > 0)); then
    # Pillarbox first: the Dovecot idle test restarts Dovecot with another config.
    for t in pillarbox dovecot; do
      [[ " $IDLE_TARGETS " == *" $t "* ]] && ok "$t" || continue
      if [[ $t == dovecot ]]; then
        stop_dovecot
        start_dovecot idle || { skip dovecot "dovecot (idle config) did not start"; continue; }
      fi
      drive "$t" idle "$(all_users)" -n "$IDLE" || failed=1
    done
  fi

  write_report
  return $failed
}

write_report() {
  mkdir -p "$(dirname "$OUT")"
  {
    echo "# Pillarbox IMAP side-by-side benchmark ($STAMP)"
    echo "# command: $CMDLINE"
    echo "# env: BENCH_MSGS=$MSGS BENCH_CONC=\"$CONCS\" BENCH_TARGETS=\"$TARGETS\" BENCH_IDLE=$IDLE BENCH_IMAP_TLS=$TLSMODE BENCH_SEED=$SEED"
    echo "# per client: ${RUN_FLAGS[*]}"
    echo "# mail: $GEN_INFO; every client its own account and INBOX (accounts: $(wc -w <<<"$(all_users)"))"
    echo "# host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), mail fs: $(stat -f -c %T "$WORK") ($(df --output=source "$WORK" | tail -1))"
    echo "# dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1), pillarbox $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?')$([[ -n ${PILLARBOX_BIN:-} ]] && echo " (PILLARBOX_BIN=$PILLARBOX_BIN)")"
    echo "# load average: $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (2 shared cores: numbers are noisy)"
    local k
    for k in "${!NOTES[@]}"; do echo "# note $k: ${NOTES[$k]}"; done
    echo
    cat "$WORK/skipped.txt"
    [[ -s $WORK/skipped.txt ]] && echo
    python3 "$LIB/imap_report.py" "$RAW"
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
  *) echo "usage: bench/imap.sh (no arguments; configure with BENCH_* variables, see --help)" >&2; exit 2 ;;
esac
CMDLINE=$(printf '%q ' "$0" "$@")
main "$@"
