package pop3server

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"pillarbox/internal/auth"
	"pillarbox/internal/store"
)

// loginAllowed reports whether USER/PASS and AUTH may be used on this
// connection: over TLS, or from loopback when the operator allows it
// (RFC 2595 2.2: no clear-text passwords otherwise).
func (s *session) loginAllowed() bool {
	return s.isTLS || (s.lim.PlaintextLoopback && s.remote.Addr().IsLoopback())
}

// cmdCapa: RFC 2449 5. What is listed depends on the state and on TLS.
func cmdCapa(s *session, arg string) {
	if arg != "" {
		s.fail("CAPA takes no argument")
		return
	}
	s.reply("+OK Capability list follows")
	s.reply("TOP")
	s.reply("UIDL")
	s.reply("RESP-CODES")
	s.reply("AUTH-RESP-CODE")
	s.reply("PIPELINING")
	s.reply("EXPIRE NEVER")
	if s.lim.LoginDelay > 0 {
		s.replyf("LOGIN-DELAY %d", int64((s.lim.LoginDelay+999_999_999)/1_000_000_000))
	}
	s.reply("IMPLEMENTATION Pillarbox")
	if s.state == stateAuthorization {
		if !s.isTLS && s.srv.opts.TLSConfig != nil {
			s.reply("STLS")
		}
		if s.loginAllowed() {
			s.reply("USER")
			s.reply("SASL " + strings.Join(mechanisms, " "))
		}
	}
	s.reply(".")
}

// cmdStls: RFC 2595 4. Input pipelined after STLS arrived before TLS and
// is discarded.
func cmdStls(s *session, arg string) {
	switch {
	case arg != "":
		s.fail("STLS takes no argument")
		return
	case s.isTLS:
		s.fail("Already using TLS")
		return
	case s.srv.opts.TLSConfig == nil:
		s.fail("STLS not available")
		return
	}
	s.reply("+OK Begin TLS negotiation")
	if err := s.bw.Flush(); err != nil {
		s.state = stateDone
		return
	}
	if n := s.br.Buffered(); n > 0 {
		s.log.Info("discarding input pipelined after STLS", "bytes", n)
		_, _ = s.br.Discard(n)
	}
	s.user = ""
	if err := s.startTLS(); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		s.state = stateDone
	}
}

// cmdUser: RFC 1939 7. The reply never tells whether the user exists.
func cmdUser(s *session, arg string) {
	if !s.loginAllowed() {
		s.fail("[AUTH] Plaintext authentication is not allowed without TLS; use STLS first")
		return
	}
	if arg == "" {
		s.fail("USER needs a user name")
		return
	}
	s.user = arg
	s.reply("+OK Send PASS")
}

// cmdPass: RFC 1939 7. The password is the rest of the line (it may hold
// spaces).
func cmdPass(s *session, arg string) {
	user := s.user
	s.user = ""
	switch {
	case !s.loginAllowed():
		s.fail("[AUTH] Plaintext authentication is not allowed without TLS; use STLS first")
		return
	case user == "":
		s.fail("Send USER first")
		return
	}
	acct, err := s.srv.opts.Auth.Login(s.ctx, user, arg, s.remote.Addr())
	if err != nil {
		s.authFailed("USER", err)
		return
	}
	s.loggedIn("USER", acct)
}

// authFailed answers a failed login (RFC 3206: [AUTH] for credentials,
// [SYS/TEMP] for a lockout or trouble on our side); a lockout ends the
// session.
func (s *session) authFailed(mech string, err error) {
	s.log.Info("auth failed", "mech", mech, "err", err.Error())
	switch {
	case errors.Is(err, auth.ErrLocked):
		s.fail("[SYS/TEMP] Too many authentication failures, try again later")
		s.state = stateDone
	case errors.Is(err, auth.ErrTemporary):
		s.fail("[SYS/TEMP] Temporary authentication failure, try again later")
	default:
		s.fail("[AUTH] Authentication failed")
	}
}

// loggedIn locks the account's maildrop and enters TRANSACTION (RFC 1939
// 7). When the maildrop is locked by another session the client stays in
// AUTHORIZATION.
func (s *session) loggedIn(mech string, acct store.Account) {
	var ld *loginDelayError
	switch err := s.srv.opts.Maildrops.acquire(acct.ID, s.srv.opts.Now(), s.lim.LoginDelay); {
	case errors.Is(err, errInUse):
		s.log.Info("maildrop in use", "account", acct.Email)
		s.fail("[IN-USE] Maildrop is in use by another POP3 session")
		return
	case errors.As(err, &ld):
		s.log.Info("login delay", "account", acct.Email, "wait", ld.wait.String())
		s.fail("[LOGIN-DELAY] Logged in too recently, try again later")
		return
	}
	s.account = &acct
	s.watchFeed() // before the listing: an expunge after it must be seen
	drop, err := s.openMaildrop()
	if err != nil {
		s.stopPrefetch()
		s.srv.opts.Maildrops.release(acct.ID)
		s.account = nil
		s.log.Error("open maildrop", "account", acct.Email, "err", err)
		s.fail("[SYS/TEMP] Cannot open the maildrop, try again later")
		return
	}
	s.drop = drop
	s.state = stateTransaction
	s.log = s.log.With("account", acct.Email)
	s.log.Info("authenticated", "mech", mech, "messages", len(drop.msgs), "octets", drop.size)
	s.replyf("+OK Maildrop has %d messages (%d octets)", len(drop.msgs), drop.size)
}

// cmdAuth: RFC 5034 4, with an optional initial response ("=" is an
// empty one). Without a mechanism it lists the mechanisms, as RFC 1734
// servers did and clients still ask.
func cmdAuth(s *session, arg string) {
	if !s.loginAllowed() {
		s.fail("[AUTH] Authentication is not allowed without TLS; use STLS first")
		return
	}
	s.user = ""
	mech, ir, hasIR := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	if mech == "" {
		s.reply("+OK Mechanisms follow")
		for _, m := range mechanisms {
			s.reply(m)
		}
		s.reply(".")
		return
	}
	if !slices.Contains(mechanisms, mech) {
		s.fail("Unsupported authentication mechanism")
		return
	}
	var resp []byte
	if hasIR {
		var err error
		if resp, err = decodeSASL(ir); err != nil {
			s.fail("Invalid base64 in the initial response")
			return
		}
	}
	srv, err := s.srv.opts.Auth.NewServer(s.ctx, mech, s.remote.Addr())
	if err != nil {
		s.authFailed(mech, err)
		return
	}
	s.saslExchange(mech, srv, resp)
}

// saslExchange runs challenge/response rounds until the mechanism is
// done; resp is nil when there was no initial response.
func (s *session) saslExchange(mech string, srv auth.Server, resp []byte) {
	for round := 0; ; round++ {
		chal, done, err := srv.Next(resp)
		if err != nil {
			s.authFailed(mech, err)
			return
		}
		if done {
			break
		}
		if round >= 10 {
			s.fail("Too many authentication rounds")
			return
		}
		s.reply("+ " + base64.StdEncoding.EncodeToString(chal))
		if err := s.bw.Flush(); err != nil {
			s.state = stateDone
			return
		}
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.fail("Authentication response too long")
			return
		case err != nil:
			s.readFailed(err)
			s.state = stateDone
			return
		case line == "*":
			s.fail("Authentication cancelled") // RFC 5034 4
			return
		}
		if resp, err = decodeSASL(line); err != nil {
			s.fail("Invalid base64 in the authentication response")
			return
		}
	}
	acct, ok := srv.Account()
	if !ok {
		s.authFailed(mech, auth.ErrFailed)
		return
	}
	s.loggedIn(mech, acct)
}

// decodeSASL decodes a base64 client response; "=" and "" are empty.
func decodeSASL(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "=" || v == "" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(v)
}
