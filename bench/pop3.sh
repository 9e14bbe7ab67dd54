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

# shellcheck source=lib/mailbox.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/mailbox.sh"

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
OUT=${BENCH_OUT:-$BENCH_DIR/results/pop3-$STAMP.txt}

# ---------------------------------------------------------------- dovecot

# dovecot_conf pop3: Dovecot as shipped (pop3-login in high-security mode: one
# login process per connection; one pop3 process per connection) plus
# the private dirs, our port, and cleartext USER/PASS allowed.
dovecot_conf() {
  dovecot_conf_head pop3
  cat <<EOF
disable_plaintext_auth = no
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

# ---------------------------------------------------------------- pillarbox

# pillarbox_write_config: the issue 4 contract with POP3 on our port,
# USER/PASS allowed from loopback without STLS, every other listener off.
pillarbox_write_config() {
  {
    pillarbox_config_head pop3 "$PORT_PILLARBOX" tls
    cat <<EOF

[pop3]
plaintext_loopback = true

[limits]
connections_per_ip = 100000
sessions = 100000
EOF
    if [[ -n ${BENCH_PILLARBOX_TOML:-} ]]; then printf '\n%s\n' "$BENCH_PILLARBOX_TOML"; fi
  } >"$PB_CFG"
}

# ---------------------------------------------------------------- runs

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

# retr_round TARGET USERS ARGS...: one pop3load run on the maildrops of
# USERS.
retr_round() { drive "$1" run "$2" -msgs "$MSGS" -seed "$SEED" "${@:3}"; }

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
  for t in "${order[@]}"; do retr_round "$t" "$users" -rounds 1 -round0 0 || failed=1; done
  for mode in $MODES; do
    w=0
    [[ $mode == pipelined ]] && w=$WINDOW
    for ((r = 0; r < ROUNDS; r++)); do
      local turn=("${order[@]}")
      ((n % 2 == 1 && ${#order[@]} == 2)) && turn=("${order[1]}" "${order[0]}")
      for t in "${turn[@]}"; do
        retr_round "$t" "$users" -rounds 1 -round0 "$n" -window "$w" || failed=1
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
  PB_REV=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?')
  [[ -n ${BENCH_CPUPROFILE:-} ]] && PB_SERVE_ARGS+=(--cpuprofile "$BENCH_CPUPROFILE")
  prepare_run pillarbox-pop3bench pop3load
  start_targets pop3 pop3

  local conc failed=0
  for conc in $CONCS; do
    run_conc "$conc" || failed=1
  done
  write_report pop3_report.py
  return $failed
}

report_header() {
  echo "# Pillarbox POP3 side-by-side benchmark ($STAMP)"
  echo "# command: $CMDLINE"
  echo "# env: BENCH_MSGS=$MSGS BENCH_CONC=\"$CONCS\" BENCH_TARGETS=\"$TARGETS\" BENCH_ROUNDS=$ROUNDS BENCH_POP3_MODES=\"$MODES\" BENCH_POP3_WINDOW=$WINDOW BENCH_POP3_TLS=$TLSMODE BENCH_SEED=$SEED"
  echo "# mail per maildrop: $GEN_INFO; every client its own account (accounts: $(wc -w <<<"$(all_users)"))"
  report_host mail
  echo "# dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1), pillarbox $PB_REV (at the start)$([[ -n ${PILLARBOX_BIN:-} ]] && echo " (PILLARBOX_BIN=$PILLARBOX_BIN)")"
  report_load
  local k
  for k in "${!NOTES[@]}"; do echo "# note $k: ${NOTES[$k]}"; done
}

bench_main "$@"
