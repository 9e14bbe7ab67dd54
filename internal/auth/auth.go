// Package auth is Pillarbox's one authenticator for SMTP, IMAP, POP3 and
// later HTTP: password hashing, login checks, SASL mechanisms over the
// store, and brute-force protection.
//
// Stored secrets (store.Credentials) are an argon2id PHC string and
// SCRAM-SHA-256 keys (RFC 5802 3); a clear password is never stored or
// logged.
//
// Invariants:
//   - An unknown user and a wrong password give the same error (ErrFailed)
//     after the same work: an unknown user is checked against a decoy
//     argon2id hash with the current parameters, and SCRAM gets decoy keys
//     derived from a per-Authenticator secret (RFC 5802 9), so that its
//     salt is stable across attempts.
//   - Failures are counted in memory per account name (normalised, also for
//     names that do not exist) and per remote address (IPv4 address or
//     IPv6 /64). MaxFailures failures within Lockout lock that name or
//     address for Lockout: ErrLocked, checked before any password work.
//     A success clears the account's count, never the address's.
//   - Every failure waits FailureDelay before it is reported.
//   - At most GOMAXPROCS argon2id computations run at once, bounding memory.
//   - Error values returned to callers have client-safe messages.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"pillarbox/internal/addr"
	"pillarbox/internal/sasl"
	"pillarbox/internal/store"
)

// Errors returned by Login and by Server.Next. Their messages are safe to
// send to a client.
var (
	ErrFailed    = errors.New("authentication failed")
	ErrLocked    = errors.New("too many authentication failures, try again later")
	ErrTemporary = errors.New("temporary authentication failure")
	ErrMechanism = errors.New("unsupported authentication mechanism")
)

// Defaults used for zero Options fields.
const (
	DefaultMaxFailures  = 5
	DefaultLockout      = 15 * time.Minute
	DefaultFailureDelay = time.Second
)

// Limits on what Login looks at; longer input fails like a wrong password.
const (
	maxUserLen     = 320 // RFC 5321 4.5.3.1.1 + 4.5.3.1.2: 64 + 1 + 255
	maxPasswordLen = sasl.MaxResponse
)

// Options configure an Authenticator. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger     // default: slog.Default()
	Now    func() time.Time // default: time.Now
	// MaxFailures failures within Lockout lock an account name or remote
	// address for Lockout. 0: DefaultMaxFailures; negative: never lock.
	MaxFailures int
	Lockout     time.Duration // 0: DefaultLockout
	// FailureDelay is waited before each failure is reported.
	// 0: DefaultFailureDelay; negative: no delay.
	FailureDelay time.Duration

	// Sleep waits for d or until ctx is done. Default: a timer. Tests
	// inject a recorder so they do not wait.
	Sleep func(ctx context.Context, d time.Duration)
	// AllowPlaintext offers the mechanisms without TLS too (for operators
	// on loopback only; never on a public listener).
	AllowPlaintext bool
	// Rand seeds the decoy SCRAM secret. Default: crypto/rand.
	Rand io.Reader
}

// Authenticator checks credentials against a store.Store. It is safe for
// concurrent use.
type Authenticator struct {
	st             store.Store
	log            *slog.Logger
	now            func() time.Time
	sleep          func(context.Context, time.Duration)
	delay          time.Duration
	allowPlaintext bool
	secret         []byte        // keys decoy SCRAM credentials
	sem            chan struct{} // bounds concurrent argon2id work
	limits         *limiter

	dummyOnce sync.Once
	dummy     string // decoy PHC string for unknown users
}

// New returns an Authenticator over st.
func New(st store.Store, opts Options) *Authenticator {
	a := &Authenticator{
		st:             st,
		log:            opts.Logger,
		now:            opts.Now,
		sleep:          opts.Sleep,
		delay:          opts.FailureDelay,
		allowPlaintext: opts.AllowPlaintext,
		sem:            make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.sleep == nil {
		a.sleep = sleepCtx
	}
	if a.delay == 0 {
		a.delay = DefaultFailureDelay
	}
	a.limits = newLimiter(lockoutDefaults(opts.MaxFailures, opts.Lockout))
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	a.secret = make([]byte, 32)
	if _, err := io.ReadFull(r, a.secret); err != nil {
		// Without randomness the decoy keys are still uniform per name;
		// they only become predictable. Log and go on.
		a.log.Error("auth: reading randomness for decoy secret", "err", err)
	}
	return a
}

// lockoutDefaults applies the Options defaults to the lockout limits.
func lockoutDefaults(maxFailures int, lockout time.Duration) (int, time.Duration) {
	if maxFailures == 0 {
		maxFailures = DefaultMaxFailures
	}
	if lockout <= 0 {
		lockout = DefaultLockout
	}
	return maxFailures, lockout
}

// SetLockout changes MaxFailures and Lockout at run time (same meaning
// and defaults as in Options). Failures already counted stay counted,
// and a name or address locked before stays locked until its old time.
func (a *Authenticator) SetLockout(maxFailures int, lockout time.Duration) {
	a.limits.set(lockoutDefaults(maxFailures, lockout))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Mechanisms lists the SASL mechanisms to advertise: none without TLS
// (RFC 4954 4: clear-text passwords only over an encrypted channel)
// unless Options.AllowPlaintext is set.
func (a *Authenticator) Mechanisms(tls bool) []string {
	if !tls && !a.allowPlaintext {
		return nil
	}
	return []string{sasl.Plain, sasl.Login, sasl.ScramSHA256}
}

// NormalizeUser returns the canonical form of a user name, the form the
// store keys accounts by: the email address parsed by addr.Parse and
// rendered by Canonical().String() (local part lower-cased, domain as
// lower-case A-labels without a trailing dot). ok is false when name is not
// an address; the lower-cased name is returned then (it still counts
// towards lockout, and is checked against the decoy hash).
func NormalizeUser(name string) (canonical string, ok bool) {
	a, err := addr.Parse(name)
	if err != nil {
		return strings.ToLower(name), false
	}
	return a.Canonical().String(), true
}

// Login checks a user name (email address) and password, as for IMAP
// LOGIN, POP3 USER/PASS and SASL PLAIN/LOGIN. It returns ErrFailed for an
// unknown user or wrong password, ErrLocked while the name or the remote
// address is locked out, and ErrTemporary when the store fails.
func (a *Authenticator) Login(ctx context.Context, user, pass string, remote netip.Addr) (store.Account, error) {
	name, valid := NormalizeUser(user)
	if !a.limits.begin(a.now(), remote, name) {
		a.log.Info("auth refused: locked out", "user", name, "remote", remote)
		return store.Account{}, ErrLocked
	}
	defer a.limits.end(remote, name)
	valid = valid && len(user) <= maxUserLen && len(pass) <= maxPasswordLen
	var (
		acct  store.Account
		cred  store.Credentials
		found bool
	)
	if valid {
		var err error
		acct, cred, err = a.st.Credentials(ctx, name)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, store.ErrNotFound):
			a.log.Error("auth: reading credentials", "user", name, "err", err)
			return store.Account{}, ErrTemporary
		}
	}
	phc := cred.PasswordHash
	if !found {
		phc = a.dummyHash()
	}
	ok, err := a.checkPassword(ctx, phc, pass)
	if err != nil {
		if errors.Is(err, ErrTemporary) {
			return store.Account{}, err
		}
		a.log.Error("auth: stored password hash unusable", "user", name, "err", err)
	}
	if !found || !ok {
		reason := "wrong password"
		if !found {
			reason = "unknown user"
		}
		return store.Account{}, a.failed(ctx, name, remote, "LOGIN", reason)
	}
	a.limits.succeeded(name)
	a.log.Info("auth ok", "user", name, "remote", remote)
	return acct, nil
}

// checkPassword runs argon2id under the concurrency bound. An unusable
// PHC string is checked against the decoy hash, so it costs the same.
func (a *Authenticator) checkPassword(ctx context.Context, phc, pass string) (bool, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false, ErrTemporary
	}
	defer func() { <-a.sem }()
	ok, err := checkPHC(phc, pass)
	if err != nil {
		checkPHC(a.dummyHash(), pass)
		return false, err
	}
	return ok, nil
}

// failed records a failure, waits FailureDelay and returns ErrFailed.
func (a *Authenticator) failed(ctx context.Context, name string, remote netip.Addr, mech, reason string) error {
	locked := a.limits.failed(a.now(), remote, name)
	a.log.Info("auth failed", "user", name, "remote", remote, "mech", mech, "reason", reason, "locked", locked)
	if a.delay > 0 {
		a.sleep(ctx, a.delay)
	}
	return ErrFailed
}

// dummyHash is a decoy PHC string with the current parameters, made once.
func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() {
		salt := a.mac("decoy-argon2-salt", "")[:saltLen]
		key := argon2.IDKey(a.mac("decoy-password", ""), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		a.dummy = encodePHC(argonParams{time: argonTime, memory: argonMemory, threads: argonThreads}, salt, key)
	})
	return a.dummy
}

// mac derives decoy material from the secret.
func (a *Authenticator) mac(label, name string) []byte {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(name))
	return m.Sum(nil)
}
