package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"pillarbox/internal/sasl"
	"pillarbox/internal/store"
)

// Server is one SASL exchange bound to the store and the lockout. Next has
// the shape of go-sasl's sasl.Server and takes and returns raw bytes (the
// protocol layer does base64). Errors are ErrFailed, ErrLocked,
// ErrTemporary or one of the sasl package's errors (malformed input);
// all have client-safe messages.
type Server interface {
	Next(response []byte) (challenge []byte, done bool, err error)
	// Account is the authenticated account, valid once Next has returned
	// done with a nil error.
	Account() (store.Account, bool)
}

// NewServer starts a SASL exchange for mech (case-insensitive: PLAIN,
// LOGIN, SCRAM-SHA-256) from remote. Whether mech may be used on this
// connection (TLS) is the caller's decision, from Mechanisms. ctx bounds
// the store look-ups and failure delays of the whole exchange.
func (a *Authenticator) NewServer(ctx context.Context, mech string, remote netip.Addr) (Server, error) {
	s := &server{a: a, ctx: ctx, remote: remote}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		s.mech = sasl.NewPlain(s.verify)
	case sasl.Login:
		s.mech = sasl.NewLogin(s.verify)
	case sasl.ScramSHA256:
		s.scram = true
		s.mech = sasl.NewScramSHA256(s.lookup)
	default:
		return nil, ErrMechanism
	}
	return s, nil
}

type server struct {
	a      *Authenticator
	ctx    context.Context
	remote netip.Addr
	mech   sasl.Server
	scram  bool

	name    string // SCRAM: normalised user name from the lookup
	found   bool   // SCRAM: lookup found usable credentials
	account store.Account
	ok      bool
}

func (s *server) Account() (store.Account, bool) { return s.account, s.ok }

func (s *server) Next(response []byte) ([]byte, bool, error) {
	// SCRAM: the lock is checked again at every step, because the client
	// chooses when to send its proof; the proof is judged within this
	// call, so exchanges opened in parallel cannot outrun the lockout.
	if s.scram && s.name != "" && s.a.limits.locked(s.a.now(), s.remote, s.name) {
		s.a.log.Info("auth refused: locked out", "user", s.name, "remote", s.remote, "mech", sasl.ScramSHA256)
		return nil, true, ErrLocked
	}
	ch, done, err := s.mech.Next(response)
	if !s.scram {
		if done && err == nil {
			s.ok = true
		}
		return ch, done, err
	}
	switch {
	case errors.Is(err, sasl.ErrInvalidProof):
		reason := "wrong password"
		if !s.found {
			reason = "unknown user"
		}
		return nil, true, s.a.failed(s.ctx, s.name, s.remote, sasl.ScramSHA256, reason)
	case err != nil:
		return nil, true, err
	case done && s.found:
		s.ok = true
		s.a.limits.succeeded(s.name)
		s.a.log.Info("auth ok", "user", s.name, "remote", s.remote, "mech", sasl.ScramSHA256)
	case done:
		// Unreachable: decoy keys cannot produce a valid proof without
		// the per-process secret. Fail closed anyway.
		return nil, true, ErrFailed
	}
	return ch, done, nil
}

// verify is the PLAIN/LOGIN callback.
func (s *server) verify(user, pass string) error {
	acct, err := s.a.Login(s.ctx, user, pass, s.remote)
	if err != nil {
		return err
	}
	s.account = acct
	return nil
}

// lookup is the SCRAM callback. An unknown user, or an account without
// SCRAM keys, gets decoy keys so the exchange fails at the proof like a
// wrong password (RFC 5802 9).
func (s *server) lookup(user string) (sasl.SCRAMCredentials, error) {
	name, valid := NormalizeUser(user)
	s.name = name
	a := s.a
	if a.limits.locked(a.now(), s.remote, name) {
		a.log.Info("auth refused: locked out", "user", name, "remote", s.remote, "mech", sasl.ScramSHA256)
		return sasl.SCRAMCredentials{}, ErrLocked
	}
	if valid && len(user) <= maxUserLen {
		acct, cred, err := a.st.Credentials(s.ctx, name)
		switch {
		case err == nil && cred.SCRAMSHA256 != nil && cred.SCRAMSHA256.Iterations >= sasl.MinIterations:
			c := cred.SCRAMSHA256
			s.found, s.account = true, acct
			return sasl.SCRAMCredentials{Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
		case err == nil:
			a.log.Warn("auth: account has no SCRAM-SHA-256 credentials", "user", name)
		case !errors.Is(err, store.ErrNotFound):
			a.log.Error("auth: reading credentials", "user", name, "err", err)
			return sasl.SCRAMCredentials{}, ErrTemporary
		}
	}
	return a.decoySCRAM(name), nil
}

// decoySCRAM returns keys for a name that has none: stable per name (so
// repeated probes see the same salt) and unguessable without the secret.
func (a *Authenticator) decoySCRAM(name string) sasl.SCRAMCredentials {
	return sasl.SCRAMCredentials{
		Salt:       a.mac("decoy-scram-salt", name)[:saltLen],
		Iterations: SCRAMIterations,
		StoredKey:  a.mac("decoy-scram-stored", name),
		ServerKey:  a.mac("decoy-scram-server", name),
	}
}
