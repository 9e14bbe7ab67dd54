package imapserver

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// Replies shared by LOGIN and AUTHENTICATE. Unknown users and wrong
// passwords get the same reply so they cannot be told apart.
var (
	errAuthFailed  = &respError{typ: "NO", code: "AUTHENTICATIONFAILED", text: "Authentication failed"}
	errAuthLocked  = &respError{typ: "NO", code: "UNAVAILABLE", text: "Too many authentication failures, try again later"}
	errAuthTemp    = &respError{typ: "NO", code: "UNAVAILABLE", text: "Temporary authentication failure, try again later"}
	errNeedTLS     = &respError{typ: "NO", code: "PRIVACYREQUIRED", text: "Use STARTTLS first"}
	errTooManyAcct = &respError{typ: "NO", code: "LIMIT", text: "Too many sessions for this account"}
)

// cmdStartTLS: RFC 9051 6.2.1. Input the client pipelined after STARTTLS
// is discarded: it arrived before TLS and cannot be trusted.
func cmdStartTLS(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	if s.isTLS || s.srv.opts.TLSConfig == nil {
		return bad("", "STARTTLS not available")
	}
	s.writeStatus(c.Tag, &respError{typ: "OK", text: "Begin TLS negotiation now"})
	if err := s.flush(); err != nil {
		return byeErr("", "Write failed")
	}
	if n := s.br.Buffered(); n > 0 {
		s.log.Info("discarding input pipelined after STARTTLS", "bytes", n)
	}
	tc := tls.Server(s.tcp, s.srv.opts.TLSConfig)
	_ = s.tcp.SetDeadline(time.Now().Add(s.lim.CommandTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		s.state = stateLogout
		return errHandled
	}
	_ = s.tcp.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	s.log.Info("starttls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	s.rw, s.isTLS = tc, true
	s.setTransport()
	return errHandled
}

// errHandled tells dispatch that the handler wrote its tagged reply itself.
var errHandled = &respError{typ: "DONE"}

// cmdLogin: RFC 9051 6.2.3.
func cmdLogin(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	if len(s.srv.opts.Auth.Mechanisms(s.isTLS)) == 0 { // LOGINDISABLED
		return errNeedTLS
	}
	user, err := astring(c.Args[0])
	if err != nil {
		return err
	}
	pass, err := astring(c.Args[1])
	if err != nil {
		return err
	}
	acct, err := s.srv.opts.Auth.Login(s.ctx, user, pass, s.remote.Addr())
	if err != nil {
		return s.authFailed("LOGIN", err)
	}
	return s.loggedIn("LOGIN", acct)
}

// authFailed maps an authentication error to the reply; every failure
// counts towards MaxErrors, and a lockout ends the session.
func (s *session) authFailed(mech string, err error) error {
	s.log.Info("auth failed", "mech", mech, "err", err.Error())
	s.errors++
	switch {
	case errors.Is(err, auth.ErrLocked):
		s.lockedOut = true // closes after the reply
		return errAuthLocked
	case errors.Is(err, auth.ErrTemporary):
		return errAuthTemp
	}
	return errAuthFailed
}

// loggedIn moves to the authenticated state, unless the account has too
// many sessions already.
func (s *session) loggedIn(mech string, acct store.Account) error {
	if !s.srv.acquireAccount(acct.ID, s.lim.MaxConnsPerAccount) {
		s.log.Warn("too many sessions for account", "account", acct.Email)
		s.errors++
		return errTooManyAcct
	}
	s.account = &acct
	s.state = stateAuth
	s.dec.SetLimits(s.decoderLimits())
	s.log = s.log.With("account", acct.Email)
	s.log.Info("authenticated", "mech", mech)
	s.okCode = "CAPABILITY " + s.capabilityString() // RFC 9051 6.2.3
	s.okText = "Logged in"
	return nil
}

// cmdAuthenticate: RFC 9051 6.2.2 with SASL-IR (RFC 4959).
func cmdAuthenticate(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 2); err != nil {
		return err
	}
	mech, err := atomArg(c.Args[0])
	if err != nil {
		return err
	}
	mechs := s.srv.opts.Auth.Mechanisms(s.isTLS)
	switch {
	case len(mechs) == 0:
		return errNeedTLS
	case !slices.Contains(mechs, mech):
		return no("CANNOT", "Unsupported authentication mechanism")
	}
	var resp []byte
	if len(c.Args) == 2 {
		ir, err := astring(c.Args[1])
		if err != nil {
			return err
		}
		if resp, err = decodeSASL(ir); err != nil {
			return err
		}
	}
	srv, err := s.srv.opts.Auth.NewServer(s.ctx, mech, s.remote.Addr())
	if err != nil {
		return s.authFailed(mech, err)
	}
	return s.saslExchange(mech, srv, resp)
}

// saslExchange runs challenge/response rounds until the mechanism is
// done. resp is nil when the client sent no initial response.
func (s *session) saslExchange(mech string, srv auth.Server, resp []byte) error {
	for round := 0; ; round++ {
		chal, done, err := srv.Next(resp)
		if err != nil {
			return s.authFailed(mech, err)
		}
		if done {
			break
		}
		if round >= 10 {
			return bad("", "Too many authentication rounds")
		}
		s.w.Raw("+ ").Raw(base64.StdEncoding.EncodeToString(chal)).CRLF()
		if err := s.flush(); err != nil {
			return byeErr("", "Write failed")
		}
		line, err := s.dec.ReadLine()
		if err != nil {
			return s.saslReadError(err)
		}
		if line == "*" {
			return bad("", "Authentication cancelled") // RFC 9051 6.2.2
		}
		if resp, err = decodeSASL(line); err != nil {
			return err
		}
	}
	acct, ok := srv.Account()
	if !ok {
		return s.authFailed(mech, auth.ErrFailed)
	}
	return s.loggedIn(mech, acct)
}

func (s *session) saslReadError(err error) error {
	var pe *imap.ProtocolError
	if errors.As(err, &pe) {
		return byeErr(pe.Code, pe.Msg)
	}
	s.log.Debug("read failed during AUTHENTICATE", "err", err)
	return byeErr("", "Connection lost")
}

// decodeSASL decodes a base64 client response; "=" is the empty one (RFC 4959).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, bad("", "Invalid base64")
	}
	return b, nil
}
