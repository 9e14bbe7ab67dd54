package smtpserver

import (
	"errors"
	"slices"

	"github.com/emersion/go-sasl"

	"pillarbox/internal/auth"
)

// SMTP AUTH (RFC 4954). go-smtp runs the exchange (base64, "*", "=");
// we decide where AUTH is allowed, pick the mechanism and map the
// outcome to replies. Only the mechanism and the account are logged.

var (
	errAuthNotHere  = smtpErr(502, [3]int{5, 5, 1}, "AUTH not available on this service")
	errAuthNeedTLS  = smtpErr(538, [3]int{5, 7, 11}, "Encryption required for requested authentication mechanism")
	errAuthInTx     = smtpErr(503, [3]int{5, 5, 1}, "AUTH not allowed during a mail transaction")
	errAuthDone     = smtpErr(503, [3]int{5, 5, 1}, "Already authenticated")
	errAuthMech     = smtpErr(504, [3]int{5, 5, 4}, "Unrecognized authentication mechanism")
	errAuthFailed   = smtpErr(535, [3]int{5, 7, 8}, "Authentication credentials invalid")
	errAuthLocked   = smtpErr(454, [3]int{4, 7, 0}, "Too many authentication failures, try again later")
	errAuthTempFail = smtpErr(454, [3]int{4, 7, 0}, "Temporary authentication failure")
)

// AuthMechanisms lists the mechanisms for EHLO: only on the submission
// modes and only under TLS.
func (s *session) AuthMechanisms() []string {
	c := s.c
	if !c.info.Mode.submission() || !c.info.TLS || c.s.opts.Auth == nil || c.info.Account != nil {
		return nil
	}
	return c.s.opts.Auth.Mechanisms(true)
}

// Auth starts an exchange for mech.
func (s *session) Auth(mech string) (_ sasl.Server, err error) {
	c := s.c
	defer c.catch("auth", &err)
	switch {
	case !c.info.Mode.submission() || c.s.opts.Auth == nil:
		return nil, errAuthNotHere
	case c.info.Helo == "":
		return nil, errNoHelo
	case !c.info.TLS:
		return nil, errAuthNeedTLS
	case s.current() != nil:
		return nil, errAuthInTx
	case c.info.Account != nil:
		return nil, errAuthDone
	case !slices.Contains(c.s.opts.Auth.Mechanisms(true), mech):
		return nil, errAuthMech
	}
	srv, err := c.s.opts.Auth.NewServer(c.ctx, mech, c.info.Remote.Addr())
	if err != nil {
		c.log.Warn("auth failed", "mech", mech, "err", err.Error())
		if errors.Is(err, auth.ErrLocked) {
			return nil, errAuthLocked
		}
		return nil, errAuthTempFail
	}
	return &saslServer{c: c, mech: mech, srv: srv}, nil
}

// saslServer wraps an auth.Server as go-sasl's sasl.Server.
type saslServer struct {
	c    *conn
	mech string
	srv  auth.Server
}

func (x *saslServer) Next(response []byte) (challenge []byte, done bool, err error) {
	c := x.c
	defer c.catch("auth", &err)
	challenge, done, err = x.srv.Next(response)
	if err != nil {
		// Unknown user, wrong password and malformed exchanges get the
		// same reply, so AUTH cannot be used to probe for accounts.
		c.log.Warn("auth failed", "mech", x.mech, "err", err.Error())
		if errors.Is(err, auth.ErrLocked) {
			return nil, true, errAuthLocked
		}
		if errors.Is(err, auth.ErrTemporary) { // RFC 4954 6: the store failed, not the client
			return nil, true, errAuthTempFail
		}
		return nil, true, errAuthFailed
	}
	if !done {
		return challenge, false, nil
	}
	acc, ok := x.srv.Account()
	if !ok {
		c.log.Warn("auth failed", "mech", x.mech, "err", "no account after success")
		return nil, true, errAuthFailed
	}
	c.info.Account = &acc
	c.log.Info("authenticated", "mech", x.mech, "account", acc.Email)
	return nil, true, nil
}
