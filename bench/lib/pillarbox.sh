# bench/lib/pillarbox.sh: a private `pillarbox serve` for the bench
# scripts (sourced after common.sh by imap.sh, pop3.sh and smtp.sh): find
# or build the binary, the common part of its config, domain and
# accounts, serve, import mail, stop.
# Uses the caller's WORK, REPO, DOMAIN and TIMEOUT (and NOTES for the
# import time); sets PB_BIN, PB_DIR, PB_CFG and PB_PID (the serve
# process, which stop_pillarbox ends). PB_SERVE_ARGS: extra `serve` args.

PB_BIN=""
PB_DIR=""
PB_CFG=""
PB_PID=""
PB_SERVE_ARGS=()

# pillarbox_prepare: find or build the binary; on failure print the reason.
pillarbox_prepare() {
  if [[ -n ${PILLARBOX_BIN:-} ]]; then
    [[ -x $PILLARBOX_BIN ]] || { echo "PILLARBOX_BIN=$PILLARBOX_BIN is not executable"; return 1; }
    return 0
  fi
  [[ -d $REPO/cmd/pillarbox ]] || { echo "no $REPO/cmd/pillarbox yet and PILLARBOX_BIN unset"; return 1; }
  command -v go >/dev/null || { echo "go not installed"; return 1; }
  log "building ./cmd/pillarbox"
  if ! (cd "$REPO" && timeout 600 go build -o "$WORK/pillarbox" ./cmd/pillarbox) \
    >"$WORK/pillarbox-build.log" 2>&1; then
    echo "go build ./cmd/pillarbox failed: $(grep -v '^#' "$WORK/pillarbox-build.log" | head -1)"
    return 1
  fi
}

# pillarbox_find: PB_BIN as pillarbox_prepare found or built it; else
# skip pillarbox with its reason (and fail).
pillarbox_find() {
  local why
  if why=$(pillarbox_prepare); then
    PB_BIN=${PILLARBOX_BIN:-$WORK/pillarbox}
  else
    skip pillarbox "$why"
    return 1
  fi
}

# pillarbox_try START ARGS...: run START (which prints the reason for a
# failure on stdout) in this shell, not a subshell, so that PB_PID stays
# tracked by cleanup; on failure skip pillarbox and stop it.
pillarbox_try() {
  local why
  why=$(mktemp "$WORK/why.XXXXXX")
  if ! "$@" >"$why"; then
    skip pillarbox "$(cat "$why")"
    stop_pillarbox
    return 1
  fi
}

# pillarbox_new DIR: PB_DIR (the data dir, created) and PB_CFG in it.
pillarbox_new() {
  PB_DIR=$1
  PB_CFG=$PB_DIR/pillarbox.toml
  mkdir -p "$PB_DIR"
}

# pillarbox_config_head LISTENER PORT [tls]: the top of the config: the
# data dir, LISTENER (smtp, imap, pop3, ...) on 127.0.0.1:PORT and every
# other listener off; with "tls", the [tls] section with WORK's
# certificate (make_cert). The script adds its own sections.
pillarbox_config_head() {
  local l
  printf 'hostname = "mx.%s"\ndata_dir = "%s"\n\n[listen]\n' "$DOMAIN" "$PB_DIR"
  for l in smtp submission submissions imap imaps pop3 pop3s; do
    if [[ $l == "$1" ]]; then echo "$l = [\"127.0.0.1:$2\"]"; else echo "$l = []"; fi
  done
  if [[ ${3:-} == tls ]]; then
    printf '\n[tls]\ncert = "%s"\nkey = "%s"\n' "$WORK/tls/cert.pem" "$WORK/tls/key.pem"
  fi
}

# pillarbox_check_config: `config check` on PB_CFG; on failure prints why.
pillarbox_check_config() {
  timeout 60 "$PB_BIN" --config "$PB_CFG" config check </dev/null >"$PB_DIR/check.log" 2>&1 ||
    { echo "config check failed: $(tail -1 "$PB_DIR/check.log")"; return 1; }
}

# pillarbox_add_accounts PASSWORD USER...: DOMAIN, then every USER with
# PASSWORD. On failure prints why.
pillarbox_add_accounts() {
  local pb=("$PB_BIN" --config "$PB_CFG") pw=$1 u
  shift
  timeout 120 "${pb[@]}" domain add "$DOMAIN" </dev/null >"$PB_DIR/admin.log" 2>&1 ||
    { echo "domain add failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  for u in "$@"; do
    echo "$pw" | timeout 120 "${pb[@]}" account add "$u" --password-stdin >>"$PB_DIR/admin.log" 2>&1 ||
      { echo "account add $u failed: $(tail -1 "$PB_DIR/admin.log")"; return 1; }
  done
}

# pillarbox_serve PROTO PORT SECS: start `serve` (with PB_SERVE_ARGS) in
# the background (PB_PID) and wait up to SECS for it to accept on
# 127.0.0.1:PORT. On failure prints why.
pillarbox_serve() {
  local proto=$1 port=$2
  "$PB_BIN" --config "$PB_CFG" serve ${PB_SERVE_ARGS[@]+"${PB_SERVE_ARGS[@]}"} </dev/null >"$PB_DIR/serve.log" 2>&1 &
  PB_PID=$!
  wait_port "$port" "$3" "$PB_PID" ||
    { echo "serve does not listen on ${proto^^} 127.0.0.1:$port: $(grep -i "$proto\|error" "$PB_DIR/serve.log" | tail -1 | cut -c1-200)"; return 1; }
}

# pillarbox_import MAILDIR USER...: import MAILDIR into every USER's
# account; the time it took goes in NOTES[pillarbox-import]. On failure
# prints why.
pillarbox_import() {
  local maildir=$1 u t0=$SECONDS
  shift
  for u in "$@"; do
    timeout "$TIMEOUT" "$PB_BIN" --config "$PB_CFG" import "$u" --format maildir "$maildir" </dev/null >>"$PB_DIR/import.log" 2>&1 ||
      { echo "import into $u failed: $(tail -1 "$PB_DIR/import.log")"; return 1; }
  done
  NOTES[pillarbox-import]="$((SECONDS - t0)) s for $# accounts"
}

# stop_pillarbox: SIGTERM serve, give it 30 s to finish, then kill its
# process tree.
stop_pillarbox() {
  [[ -n $PB_PID ]] || return 0
  kill -TERM "$PB_PID" 2>/dev/null
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$PB_PID" 2>/dev/null || break; sleep 0.1; done
  kill_tree "$PB_PID"
  wait "$PB_PID" 2>/dev/null
  PB_PID=""
}

# pillarbox_version: the checkout's revision, and PILLARBOX_BIN when set
# (for the report).
pillarbox_version() {
  echo "$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?')$([[ -n ${PILLARBOX_BIN:-} ]] && echo " (PILLARBOX_BIN=$PILLARBOX_BIN)")"
}
