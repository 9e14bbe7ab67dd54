# bench/lib/dovecot.sh: a private Dovecot for the bench scripts (sourced
# after common.sh by imap.sh, pop3.sh and smtp.sh): passwd-file users with
# maildirs, the common part of the config, start, stop.
# Uses the caller's WORK, NOBODY_UID and NOBODY_GID; sets DC_DIR (the
# Dovecot dir under WORK) and DC_CONF (the running config file).

DC_DIR=""
DC_CONF=""

# dovecot_setup_users HASH MAILDIR USER...: DC_DIR with run/ and state/,
# a passwd-file (every user with password hash HASH, uid/gid nobody, home
# WORK/mail/USER) and, unless MAILDIR is "", a copy of MAILDIR as each
# user's ~/Maildir (cp -r, not hard links: each account has its own
# page-cache copy, as on the other server).
dovecot_setup_users() {
  local hash=$1 maildir=$2 u
  shift 2
  DC_DIR=$WORK/dovecot
  mkdir -p "$DC_DIR/run" "$DC_DIR/state" "$WORK/mail"
  chmod 755 "$DC_DIR" "$DC_DIR/run" "$WORK/mail"
  : >"$DC_DIR/users"
  for u in "$@"; do
    mkdir -p "$WORK/mail/$u"
    [[ -n $maildir ]] && cp -r "$maildir" "$WORK/mail/$u/Maildir"
    printf '%s:%s:%s:%s::%s::\n' "$u" "$hash" "$NOBODY_UID" "$NOBODY_GID" "$WORK/mail/$u" >>"$DC_DIR/users"
  done
  chown -R "$NOBODY_UID:$NOBODY_GID" "$WORK/mail"
  chmod 644 "$DC_DIR/users"
}

# dovecot_conf_head PROTOCOLS: the config lines every private instance
# has: DC_DIR's dirs and log, PROTOCOLS on 127.0.0.1, maildirs, and the
# users of dovecot_setup_users as passdb and userdb. The script adds
# ssl and its services.
dovecot_conf_head() {
  cat <<EOF
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
log_path = $DC_DIR/dovecot.log
protocols = $1
listen = 127.0.0.1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
}
EOF
}

# dovecot_launch CONF: start a Dovecot master with config file CONF.
dovecot_launch() {
  DC_CONF=$1
  dovecot -c "$DC_CONF" >"$DC_DIR/start.log" 2>&1 || {
    cat "$DC_DIR/start.log" >&2; tail -5 "$DC_DIR/dovecot.log" >&2 2>/dev/null; DC_CONF=""; return 1; }
}

# dovecot_start CONF PORT: dovecot_launch CONF and wait until it accepts
# on 127.0.0.1:PORT.
dovecot_start() {
  dovecot_launch "$1" || return 1
  wait_port "$2" 30 || { log "dovecot: not listening on $2"; return 1; }
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
