# bench/lib/dovecot.sh: helpers shared by imap.sh and pop3.sh (sourced
# after common.sh): package install, the shared certificate, and a
# private Dovecot (passwd-file users with maildirs, start, stop).
# Uses the caller's WORK, DOMAIN, NOBODY_UID and NOBODY_GID; sets DC_DIR
# (the Dovecot dir under WORK) and DC_CONF (the running config file).

DC_DIR=""
DC_CONF=""

# install_packages PKG...: apt-get install the missing ones (idempotent;
# nothing when BENCH_SKIP_INSTALL=1). apt-get update only when there are
# no package lists or the install fails without a fresh update.
install_packages() {
  [[ ${BENCH_SKIP_INSTALL:-0} == 1 ]] && return 0
  local pkgs=("$@") missing=() p
  for p in "${pkgs[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root: install them first"
  log "installing ${missing[*]}"
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

# dovecot_setup_users HASH MAILDIR USER...: DC_DIR with run/ and state/,
# a passwd-file (every user with password hash HASH, uid/gid nobody) and a
# copy of MAILDIR as each user's ~/Maildir (cp -r, not hard links: each
# account has its own page-cache copy, as on the other server).
dovecot_setup_users() {
  local hash=$1 maildir=$2 u
  shift 2
  DC_DIR=$WORK/dovecot
  mkdir -p "$DC_DIR/run" "$DC_DIR/state" "$WORK/mail"
  chmod 755 "$DC_DIR" "$DC_DIR/run" "$WORK/mail"
  : >"$DC_DIR/users"
  for u in "$@"; do
    mkdir -p "$WORK/mail/$u"
    cp -r "$maildir" "$WORK/mail/$u/Maildir"
    printf '%s:%s:%s:%s::%s::\n' "$u" "$hash" "$NOBODY_UID" "$NOBODY_GID" "$WORK/mail/$u" >>"$DC_DIR/users"
  done
  chown -R "$NOBODY_UID:$NOBODY_GID" "$WORK/mail"
  chmod 644 "$DC_DIR/users"
}

# dovecot_start CONF PORT: start a Dovecot master with config file CONF
# and wait until it accepts on 127.0.0.1:PORT.
dovecot_start() {
  DC_CONF=$1
  local port=$2
  dovecot -c "$DC_CONF" >"$DC_DIR/start.log" 2>&1 || {
    cat "$DC_DIR/start.log" >&2; tail -5 "$DC_DIR/dovecot.log" >&2 2>/dev/null; DC_CONF=""; return 1; }
  wait_port "$port" 30 || { log "dovecot: not listening on $port"; return 1; }
}

dovecot_pid() { pidfile_pid "$DC_DIR/run/master.pid"; }

# stop_dovecot: doveadm stop, then kill whatever is left of the master's
# process tree.
stop_dovecot() {
  [[ -n $DC_CONF && -f $DC_CONF ]] || return 0
  local pid; pid=$(dovecot_pid)
  timeout 30 doveadm -c "$DC_CONF" stop >/dev/null 2>&1 ||
    timeout 30 dovecot -c "$DC_CONF" stop >/dev/null 2>&1
  [[ -n $pid ]] && kill_tree "$pid"
  DC_CONF=""
}
