#!/usr/bin/env bash
# bench/smtp.sh: side-by-side SMTP receiving benchmark (issue 2, "Speed").
#
# Drives the same load (Postfix's smtp-source) at three targets on loopback:
#   sink       smtp-sink: stores nothing, the ceiling of load client + loopback
#   postfix    a private Postfix instance delivering over LMTP to a private
#              Dovecot instance (maildir), both durable as shipped
#   pillarbox  a private `pillarbox serve` (fresh data dir for every run)
# and reports msgs/s until every message is in the recipient's mailbox, the
# ratios, and peak memory. See bench/README.md for what each number means.
#
# Environment (all optional):
#   BENCH_N=5000              messages per run
#   BENCH_SIZES="4096 65536"  message payload sizes (smtp-source -l)
#   BENCH_CONC="1 20"         concurrent connections (smtp-source -s)
#   BENCH_TARGETS="sink postfix pillarbox"
#   BENCH_REUSE=0             1: every session sends all its messages over one
#                             connection (smtp-source -d); 0: one message per connection
#   BENCH_TIMEOUT=600         max seconds per run (load + wait for the mailbox)
#   BENCH_TMPDIR=/var/tmp     where the private spools live (must be a real disk)
#   BENCH_KEEP_TMP=0          1: keep the work dir (configs, logs) after the run
#   BENCH_SKIP_INSTALL=0      1: do not apt-get install
#   BENCH_PORT_BASE=12525     smtpd ports: postfix BASE, smtp-sink BASE+1, pillarbox BASE+2
#   BENCH_OUT=bench/results/smtp-<date>.txt
#   PILLARBOX_BIN             use this binary instead of building ./cmd/pillarbox
#   PILLARBOX_COUNT_CMD       shell command printing the number of messages in
#                             bench@bench.test (overrides the export-based count)
#   BENCH_PILLARBOX_POLL=after  "during" polls the count while the load runs
#                             (only sensible with a cheap PILLARBOX_COUNT_CMD)
set -uo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/dovecot.sh
. "$LIB/dovecot.sh"
# shellcheck source=lib/pillarbox.sh
. "$LIB/pillarbox.sh"

N=${BENCH_N:-5000}
SIZES=${BENCH_SIZES:-"4096 65536"}
CONCS=${BENCH_CONC:-"1 20"}
TARGETS=${BENCH_TARGETS:-"sink postfix pillarbox"}
REUSE=${BENCH_REUSE:-0}
TIMEOUT=${BENCH_TIMEOUT:-600}
PORT_BASE=${BENCH_PORT_BASE:-12525}
PORT_POSTFIX=$PORT_BASE
PORT_SINK=$((PORT_BASE + 1))
PORT_PILLARBOX=$((PORT_BASE + 2))
OUT=${BENCH_OUT:-$BENCH_DIR/results/smtp-$STAMP.txt}
RCPT=bench@bench.test

SINK_PID=""
PF_CONF=""

# stop_servers (for cleanup).
stop_servers() {
  stop_pillarbox
  [[ -n $SINK_PID ]] && { kill_tree "$SINK_PID"; SINK_PID=""; }
  stop_postfix
  stop_dovecot
}

# install_smtp_packages: Postfix (smtpd, smtp-source, smtp-sink) and Dovecot's LMTP.
install_smtp_packages() {
  DEBCONF_PRESEED='postfix postfix/main_mailer_type select No configuration' \
    install_packages postfix dovecot-core dovecot-lmtpd dovecot-imapd
  [[ ${BENCH_SKIP_INSTALL:-0} == 1 || -x /usr/sbin/smtp-source ]] || die "/usr/sbin/smtp-source missing after install"
}

# ---------------------------------------------------------------- dovecot

MAILDIR=""

# start_dovecot: Dovecot delivering RCPT's mail (LMTP, on a unix socket)
# to its Maildir. Everything else is Dovecot's shipped default
# (mail_fsync = optimized).
start_dovecot() {
  MAILDIR=$WORK/mail/$RCPT/Maildir
  dovecot_setup_users '{PLAIN}bench' "" "$RCPT"
  {
    dovecot_conf_head lmtp
    cat <<EOF
ssl = no
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
EOF
  } >"$DC_DIR/dovecot.conf"
  dovecot_launch "$DC_DIR/dovecot.conf" || return 1
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $DC_DIR/run/lmtp ]] && return 0
    sleep 0.1
  done
  log "dovecot: no LMTP socket after 10 s"; return 1
}

# ---------------------------------------------------------------- postfix

PF_DIR=""

start_postfix() {
  PF_DIR=$WORK/postfix
  PF_CONF=$PF_DIR/etc
  mkdir -p "$PF_CONF" "$PF_DIR/spool" "$PF_DIR/data"
  chmod 755 "$PF_DIR" "$PF_CONF" "$PF_DIR/spool"
  chown postfix "$PF_DIR/data"
  # Only what a private loopback instance needs differs from the defaults;
  # queue file fsync, in_flow_delay, concurrency limits: as shipped.
  cat >"$PF_CONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/spool
data_directory = $PF_DIR/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination = $DOMAIN
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = lmtp:unix:$DC_DIR/run/lmtp
biff = no
maillog_file = $PF_DIR/maillog
EOF
  # Debian's master.cf minus optional transports; chroot off (a chroot would
  # need copies of /etc files in the private spool; it does not change I/O).
  cat >"$PF_CONF/master.cf" <<EOF
127.0.0.1:$PORT_POSTFIX inet n - n - - smtpd
pickup     unix n - n 60 1 pickup
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp       unix - - n - - smtp
relay      unix - - n - - smtp
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
local      unix - n n - - local
lmtp       unix - - n - - lmtp
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
  timeout 60 postfix -c "$PF_CONF" check >"$PF_DIR/start.log" 2>&1 &&
    timeout 60 postfix -c "$PF_CONF" start >>"$PF_DIR/start.log" 2>&1 || {
    cat "$PF_DIR/start.log" >&2; return 1; }
  wait_port "$PORT_POSTFIX" 30 || { log "postfix: smtpd not listening"; return 1; }
}

postfix_master_pid() { pidfile_pid "$PF_DIR/spool/pid/master.pid"; }

stop_postfix() {
  [[ -n $PF_CONF && -d $PF_CONF ]] || return 0
  local pid; pid=$(postfix_master_pid)
  timeout 30 postfix -c "$PF_CONF" stop >/dev/null 2>&1
  [[ -n $pid ]] && kill_tree "$pid"
  PF_CONF=""
}

# Postfix's queue must be empty between runs (a deferred message would be
# counted in the next run).
postfix_queue_empty() {
  local n
  n=$(find "$PF_DIR/spool/incoming" "$PF_DIR/spool/active" "$PF_DIR/spool/deferred" \
    "$PF_DIR/spool/maildrop" "$PF_DIR/spool/hold" -type f 2>/dev/null | wc -l)
  [[ $n -eq 0 ]]
}

clear_maildir() {
  find "$MAILDIR/new" "$MAILDIR/cur" -type f -delete 2>/dev/null
  return 0
}

# ---------------------------------------------------------------- smtp-sink

start_sink() {
  local user=()
  [[ $EUID -eq 0 ]] && user=(-u postfix)
  smtp-sink "${user[@]}" -4 "127.0.0.1:$PORT_SINK" 1000 >"$WORK/sink.log" 2>&1 &
  SINK_PID=$!
  wait_port "$PORT_SINK" 10 "$SINK_PID" || { cat "$WORK/sink.log" >&2; return 1; }
}

# ---------------------------------------------------------------- pillarbox

# pillarbox_count: messages in bench@bench.test (all mailboxes). The default
# exports the account as mbox and counts the From_ lines: correct but costly
# (it reads every message), which is why the Pillarbox run only counts once
# the load has ended. Set PILLARBOX_COUNT_CMD to a cheaper query.
pillarbox_count() {
  if [[ -n ${PILLARBOX_COUNT_CMD:-} ]]; then
    bash -c "$PILLARBOX_COUNT_CMD"
    return
  fi
  "$PB_BIN" --config "$PB_CFG" export "$RCPT" --format mbox --output - | grep -c '^From '
  local st=("${PIPESTATUS[@]}")
  if [[ ${st[0]} -ne 0 ]]; then
    echo "pillarbox export failed (exit ${st[0]})" >&2
    return 1
  fi
  return 0
}

# pillarbox_start RUNID: a fresh data dir, domain, account, then serve.
# On failure prints the reason on stdout.
pillarbox_start() {
  pillarbox_new "$WORK/pillarbox-$1"
  # Config contract of issue 2. connections_per_ip: Postfix's shipped
  # smtpd_client_connection_count_limit (50), so 20 sessions from 127.0.0.1 fit.
  {
    pillarbox_config_head smtp "$PORT_PILLARBOX"
    printf '\n[limits]\nconnections_per_ip = 50\n'
  } >"$PB_CFG"
  pillarbox_add_accounts "bench-password-$RANDOM$RANDOM" "$RCPT" || return 1
  pillarbox_serve smtp "$PORT_PILLARBOX" 60
}

# ---------------------------------------------------------------- runs

# measure TARGET SIZE CONC PORT COUNT POLL PID...
measure() {
  local target=$1 size=$2 conc=$3 port=$4 count=$5 poll=$6
  shift 6
  local pids=() p reuse=()
  for p in "$@"; do [[ -n $p ]] && pids+=(--pid "$p"); done
  [[ $REUSE == 1 ]] && reuse=(--reuse)
  sync
  log "run: $target size=$size conc=$conc n=$N"
  local line
  line=$(python3 "$LIB/measure.py" --target "$target" --port "$port" --size "$size" \
    --conc "$conc" --n "$N" --rcpt "$RCPT" --count "$count" --poll "$poll" \
    --timeout "$TIMEOUT" --log "$WORK/smtp-source-$target-$size-$conc.log" \
    "${reuse[@]}" "${pids[@]}")
  local rc=$?
  [[ -n $line ]] && echo "$line" >>"$RAW"
  log "  -> $line"
  if [[ $rc -ne 0 ]]; then
    tail -3 "$WORK/smtp-source-$target-$size-$conc.log" >&2 2>/dev/null
  fi
  return $rc
}

run_sink() {
  measure sink "$1" "$2" "$PORT_SINK" none during "$SINK_PID"
}

run_postfix() {
  clear_maildir
  postfix_queue_empty || log "warning: postfix queue not empty before the run"
  measure postfix "$1" "$2" "$PORT_POSTFIX" "maildir:$MAILDIR" during \
    "$(postfix_master_pid)" "$(dovecot_pid)"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    log "postfix log tail:"; tail -5 "$PF_DIR/maillog" >&2 2>/dev/null
    log "dovecot log tail:"; tail -5 "$DC_DIR/dovecot.log" >&2 2>/dev/null
    postfix_purge
  fi
  clear_maildir
  return $rc
}

# postfix_purge: after a failed run, drop what is still queued and let
# in-flight deliveries finish, so the next run starts from an empty mailbox.
postfix_purge() {
  timeout 60 postsuper -c "$PF_CONF" -d ALL >/dev/null 2>&1
  local i
  for ((i = 0; i < 300; i++)); do postfix_queue_empty && break; sleep 0.1; done
  sleep 1
}

main() {
  [[ $N =~ ^[0-9]+$ && $N -gt 0 ]] || die "BENCH_N must be a positive integer"
  command -v python3 >/dev/null || die "python3 is required"
  install_smtp_packages
  make_work_dir pillarbox-bench
  check_ports_free "$PORT_POSTFIX" "$PORT_SINK" "$PORT_PILLARBOX"

  if want sink; then start_sink || skip sink "smtp-sink did not start"; fi
  if want postfix; then
    if [[ $EUID -ne 0 ]]; then
      skip postfix "Postfix's master must run as root"
    elif ! start_dovecot; then
      skip postfix "dovecot did not start (see above)"
    elif ! start_postfix; then
      skip postfix "postfix did not start (see above)"
    fi
  fi
  want pillarbox && pillarbox_find
  export PB_BIN PB_CFG RCPT PILLARBOX_COUNT_CMD="${PILLARBOX_COUNT_CMD:-}"
  export -f pillarbox_count

  local size conc failed=0
  for size in $SIZES; do
    for conc in $CONCS; do
      if want sink && [[ -z ${SKIPPED[sink]:-} ]]; then
        run_sink "$size" "$conc" || failed=1
      fi
      if want postfix && [[ -z ${SKIPPED[postfix]:-} ]]; then
        run_postfix "$size" "$conc" || failed=1
      fi
      if want pillarbox && [[ -z ${SKIPPED[pillarbox]:-} ]]; then
        if pillarbox_start_and_measure "$size" "$conc"; then :; else
          [[ -z ${SKIPPED[pillarbox]:-} ]] && failed=1
        fi
      fi
    done
  done

  write_report report.py
  return $failed
}

# pillarbox_start_and_measure SIZE CONC: one run on a fresh instance. A
# setup failure skips Pillarbox for the rest of the bench.
pillarbox_start_and_measure() {
  local size=$1 conc=$2
  pillarbox_try pillarbox_start "$size-$conc" || return 1
  local rc=0
  measure pillarbox "$size" "$conc" "$PORT_PILLARBOX" "cmd:pillarbox_count" \
    "${BENCH_PILLARBOX_POLL:-after}" "$PB_PID" || rc=1
  if [[ $rc -ne 0 ]]; then
    log "pillarbox serve log tail:"; tail -5 "$PB_DIR/serve.log" >&2 2>/dev/null
    log "pillarbox count: $(pillarbox_count 2>&1 | tail -2 | tr '\n' ' ')"
  fi
  stop_pillarbox
  # Each run leaves N messages behind: drop them (BENCH_KEEP_TMP keeps all).
  if [[ ${BENCH_KEEP_TMP:-0} != 1 ]]; then
    cp "$PB_DIR/serve.log" "$WORK/pillarbox-serve-$size-$conc.log" 2>/dev/null
    rm -rf "$PB_DIR"
  fi
  return $rc
}

report_header() {
  echo "# Pillarbox SMTP side-by-side benchmark ($STAMP)"
  echo "# command: $CMDLINE"
  echo "# env: BENCH_N=$N BENCH_SIZES=\"$SIZES\" BENCH_CONC=\"$CONCS\" BENCH_TARGETS=\"$TARGETS\" BENCH_REUSE=$REUSE BENCH_TIMEOUT=$TIMEOUT"
  echo "# messages per connection: $([[ $REUSE == 1 ]] && echo "all of a session's (smtp-source -d)" || echo "one (a new connection per message)")"
  report_host spool
  echo "# postfix $(postconf -d -h mail_version 2>/dev/null), dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1), pillarbox $(pillarbox_version)"
  report_load ", run 3 times"
  echo "# seconds: from the start of smtp-source until every message is in the mailbox"
  echo "#          (smtp-sink: until smtp-source exits). acked s: until smtp-source exited."
}

bench_main "$@"
