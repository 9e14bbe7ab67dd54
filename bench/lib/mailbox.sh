# bench/lib/mailbox.sh: what the mailbox-access benchmarks imap.sh and
# pop3.sh share (sourced after common.sh, dovecot.sh and pillarbox.sh):
# their accounts, the Go load driver and its generated mail, the two
# targets (dovecot, pillarbox) and one driver invocation.
# Uses the caller's CONCS, DOMAIN, MSGS, SEED, PASSWORD, TLSMODE, TIMEOUT,
# PORT_DOVECOT, PORT_PILLARBOX and its dovecot_conf and
# pillarbox_write_config; sets LOAD, DRIVER, GEN, GEN_INFO and PASSWORD
# (of every account on both servers).

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=dovecot.sh
. "$LIB/dovecot.sh"
# shellcheck source=pillarbox.sh
. "$LIB/pillarbox.sh"

PASSWORD="bench-pw-$RANDOM$RANDOM"

LOAD=""
DRIVER=""
GEN=""
GEN_INFO=""
declare -A NOTES=()

# users_for CONC: the accounts of the CONC-client run, disjoint between
# runs, so that each run's first round meets mailboxes no session has
# opened, on both servers.
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

# build_driver NAME: LOAD is $NAME_BIN (upper case: IMAPLOAD_BIN,
# POP3LOAD_BIN) or a fresh build of ./bench/NAME; DRIVER is NAME.
build_driver() {
  local name=$1 var=${1^^}_BIN
  DRIVER=$name
  if [[ -n ${!var:-} ]]; then
    [[ -x ${!var} ]] || die "$var=${!var} is not executable"
    LOAD=${!var}
    return
  fi
  command -v go >/dev/null || die "go is required to build bench/$name (or set $var)"
  log "building ./bench/$name"
  (cd "$REPO" && timeout 600 go build -o "$WORK/$name" "./bench/$name") >"$WORK/$name-build.log" 2>&1 ||
    { cat "$WORK/$name-build.log" >&2; die "go build ./bench/$name failed"; }
  LOAD=$WORK/$name
}

# generate_mail: GEN, a Maildir of MSGS messages from the driver's
# generator (seed SEED); GEN_INFO, its summary for the report.
generate_mail() {
  GEN=$WORK/gen/Maildir
  log "generating $MSGS messages (seed $SEED)"
  "$LOAD" gen -dir "$GEN" -n "$MSGS" -seed "$SEED" 2>&1 | tee "$WORK/gen.log" >&2
  [[ ${PIPESTATUS[0]} -eq 0 ]] || die "$DRIVER gen failed"
  GEN_INFO=$(head -1 "$WORK/gen.log" | sed 's/^.*gen: //; s/, in .*$//')
}

# prepare_run WORKNAME DRIVER: the work dir, port checks, the driver, the
# certificate and the mail.
prepare_run() {
  make_work_dir "$1"
  check_ports_free "$PORT_DOVECOT" "$PORT_PILLARBOX"
  build_driver "$2"
  make_cert
  generate_mail
}

# pillarbox_start PROTO: in WORK/pillarbox-data the config
# (pillarbox_write_config, the script's), config check, the domain and
# all_users with PASSWORD, serve (PROTO on PORT_PILLARBOX), then GEN
# imported into every account. On failure prints why.
pillarbox_start() {
  pillarbox_new "$WORK/pillarbox-data"
  pillarbox_write_config || return 1
  pillarbox_check_config || return 1
  pillarbox_add_accounts "$PASSWORD" $(all_users) || return 1
  pillarbox_serve "$1" "$PORT_PILLARBOX" 30 || return 1
  pillarbox_import "$GEN" $(all_users)
}

# setup_dovecot MODE: the users (their password hashed by the driver
# with Pillarbox's parameters) with a copy of GEN each, then
# start_dovecot MODE.
setup_dovecot() {
  local hash
  hash=$("$LOAD" hash -password "$PASSWORD") || return 1
  dovecot_setup_users "$hash" "$GEN" $(all_users)
  start_dovecot "$1"
}

# start_dovecot MODE: Dovecot with the script's `dovecot_conf MODE`
# (saved as DC_DIR/dovecot-MODE.conf) on PORT_DOVECOT.
start_dovecot() {
  dovecot_conf "$1" >"$DC_DIR/dovecot-$1.conf"
  dovecot_start "$DC_DIR/dovecot-$1.conf" "$PORT_DOVECOT"
}

# start_targets PROTO MODE: Dovecot (setup_dovecot MODE) and Pillarbox
# (pillarbox_start PROTO), each if wanted; one that does not start is
# skipped.
start_targets() {
  if want dovecot; then
    if [[ $EUID -ne 0 ]]; then
      skip dovecot "Dovecot's master must run as root"
    elif ! setup_dovecot "$2"; then
      skip dovecot "dovecot did not start (see above)"
    fi
  fi
  if want pillarbox && pillarbox_find; then
    pillarbox_try pillarbox_start "$1"
  fi
  return 0
}

# stop_servers (for cleanup).
stop_servers() {
  stop_pillarbox
  stop_dovecot
}

target_addr() { [[ $1 == dovecot ]] && echo "127.0.0.1:$PORT_DOVECOT" || echo "127.0.0.1:$PORT_PILLARBOX"; }
target_pid() { [[ $1 == dovecot ]] && dovecot_pid || echo "$PB_PID"; }

# drive TARGET MODE USERS ARGS...: one `$DRIVER MODE` against TARGET
# with one client per account in USERS (space-separated) and ARGS; JSON
# lines into RAW, the driver's log into WORK/$DRIVER.log.
drive() {
  local target=$1 mode=$2 users
  users=$(tr ' ' ',' <<<"$3")
  shift 3
  sync
  log "run: $mode $target ($(wc -w <<<"${users//,/ }") clients) $*"
  timeout "$TIMEOUT" "$LOAD" "$mode" -addr "$(target_addr "$target")" -tls "$TLSMODE" \
    -users "$users" -password "$PASSWORD" -label "$target" -pids "$(target_pid "$target")" \
    "$@" >>"$RAW" 2> >(tee -a "$WORK/$DRIVER.log" >&2)
  local rc=$?
  [[ $rc -eq 124 ]] && log "$target: $mode timed out after $TIMEOUT s"
  return $rc
}
