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

# shellcheck source=lib/mailbox.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/mailbox.sh"

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
OUT=${BENCH_OUT:-$BENCH_DIR/results/imap-$STAMP.txt}
RUN_FLAGS=(-logins "${BENCH_LOGINS:-20}" -selects "${BENCH_SELECTS:-20}"
  -fetches "${BENCH_FETCHES:-5}" -bodies "${BENCH_BODIES:-1000}" -stores "${BENCH_STORES:-1000}"
  -appends "${BENCH_APPENDS:-1000}" -header-search-rounds "${BENCH_HDR_SEARCH_ROUNDS:-3}"
  -body-search-rounds "${BENCH_BODY_SEARCH_ROUNDS:-1}")

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

# ---------------------------------------------------------------- dovecot

# dovecot_conf MODE: "throughput" is Dovecot's shipped defaults (imap-login
# in high-security mode: one login process per connection, which also
# proxies the TLS; one imap process per connection) plus the private
# dirs, our port and certificate. "idle" lets processes serve many
# connections (see README: 10,000 of each process would not fit in memory).
dovecot_conf() {
  local mode=$1
  dovecot_conf_head imap
  cat <<EOF
ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem
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

# ---------------------------------------------------------------- pillarbox

# pillarbox_config: the config contract of issue 2/3 with IMAP on our port
# and every other listener off. Limits that keys exist for are raised so
# that 10,000 connections from 127.0.0.1 fit; OPTIONAL keys are kept only
# when `pillarbox config check` accepts them (the IMAP config is being
# written: an unknown key is noted, not fatal).
OPTIONAL_LIMITS=()

pillarbox_config() {
  local limits=("$@")
  pillarbox_config_head imap "$PORT_PILLARBOX" tls
  cat <<EOF

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

# pillarbox_write_config: PB_CFG with the OPTIONAL_LIMITS that `config
# check` accepts.
pillarbox_write_config() {
  local keep=() l
  for l in ${OPTIONAL_LIMITS[@]+"${OPTIONAL_LIMITS[@]}"}; do
    pillarbox_config "${keep[@]}" "$l" >"$PB_CFG"
    if timeout 60 "$PB_BIN" --config "$PB_CFG" config check </dev/null >"$PB_DIR/check.log" 2>&1; then
      keep+=("$l")
    else
      NOTES[pillarbox]+="config key limits.${l%% *} not accepted ($(tail -1 "$PB_DIR/check.log")); "
    fi
  done
  pillarbox_config ${keep[@]+"${keep[@]}"} >"$PB_CFG"
}

# ---------------------------------------------------------------- runs

main() {
  [[ $MSGS =~ ^[0-9]+$ && $MSGS -gt 0 ]] || die "BENCH_MSGS must be a positive integer"
  [[ $TLSMODE == starttls || $TLSMODE == plain ]] || die "BENCH_IMAP_TLS must be starttls or plain"
  command -v python3 >/dev/null || die "python3 is required"
  install_packages dovecot-core dovecot-imapd openssl
  raise_nofile
  prepare_run pillarbox-imapbench imapload
  start_targets imap throughput

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

  write_report imap_report.py
  return $failed
}

report_header() {
  echo "# Pillarbox IMAP side-by-side benchmark ($STAMP)"
  echo "# command: $CMDLINE"
  echo "# env: BENCH_MSGS=$MSGS BENCH_CONC=\"$CONCS\" BENCH_TARGETS=\"$TARGETS\" BENCH_IDLE=$IDLE BENCH_IMAP_TLS=$TLSMODE BENCH_SEED=$SEED"
  echo "# per client: ${RUN_FLAGS[*]}"
  echo "# mail: $GEN_INFO; every client its own account and INBOX (accounts: $(wc -w <<<"$(all_users)"))"
  report_host mail
  echo "# dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1), pillarbox $(pillarbox_version)"
  report_load
  local k
  for k in "${!NOTES[@]}"; do echo "# note $k: ${NOTES[$k]}"; done
}

bench_main "$@"
