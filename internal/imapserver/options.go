package imapserver

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/limit"
	"pillarbox/internal/store"
)

// Defaults used when the corresponding Options (or Limits) field is zero.
// A negative limit disables that limit.
const (
	DefaultMaxLine            = 64 << 10 // command line, literals excluded
	DefaultMaxLiteral         = 50 << 20 // one literal; advertised as APPENDLIMIT
	DefaultMaxConnsPerIP      = 20
	DefaultMaxConnsPerAccount = 50
	DefaultMaxSessions        = 1000
	DefaultMaxErrors          = 10
	DefaultAutoLogout         = 30 * time.Minute // RFC 9051 5.4: at least 30 minutes
	DefaultCommandTimeout     = 5 * time.Minute  // silence inside a half-sent command
)

// Options configure a Server. Store and Auth are required; TLSConfig is
// required for ImplicitTLS and enables STARTTLS otherwise.
type Options struct {
	Hostname    string      // for logs
	TLSConfig   *tls.Config // STARTTLS, or every connection with ImplicitTLS
	ImplicitTLS bool        // port 993 (RFC 8314): TLS from the first byte
	Store       store.Store
	Auth        Authenticator
	Logger      *slog.Logger
	Now         func() time.Time

	MaxLine            int           // bytes of a command line, literals excluded
	MaxLiteral         int64         // largest literal, advertised as APPENDLIMIT=n (RFC 7889)
	MaxConnsPerIP      int           // concurrent connections from one address; more get "* BYE [LIMIT]"
	MaxConnsPerAccount int           // concurrent authenticated sessions per account; more get NO [LIMIT]
	MaxSessions        int           // concurrent connections in total (unused when Sessions is set)
	MaxErrors          int           // BAD replies and failed logins before "* BYE Too many errors"
	AutoLogout         time.Duration // idle time before "* BYE Autologout" (IDLE re-arms it)
	CommandTimeout     time.Duration // longest silence inside a command that has begun

	// Sessions, when set, is the concurrent-session limit shared with
	// other endpoints; when nil the Server makes its own of MaxSessions.
	Sessions *limit.Counter

	// SpillDir holds literals too large to keep in memory. Empty: the
	// store's spool (store.Spooler) when it has one, else os.TempDir().
	SpillDir string

	// Rand is the source of connection IDs (default crypto/rand).
	Rand io.Reader
}

// Authenticator checks credentials; *auth.Authenticator satisfies it.
// Mechanisms(tls) empty means no authentication is offered on that
// transport: LOGINDISABLED is advertised and LOGIN refused.
type Authenticator interface {
	Login(ctx context.Context, user, pass string, remote netip.Addr) (store.Account, error)
	Mechanisms(tls bool) []string
	NewServer(ctx context.Context, mech string, remote netip.Addr) (auth.Server, error)
}

// Limits are the per-connection limits of a Server. They start as the
// Options fields of the same names and are replaced by SetLimits; zero
// fields take the defaults, negative ones disable the limit. Every
// connection keeps the snapshot it was admitted with.
type Limits struct {
	MaxLine            int
	MaxLiteral         int64
	MaxConnsPerIP      int
	MaxConnsPerAccount int
	MaxErrors          int
	AutoLogout         time.Duration
	CommandTimeout     time.Duration
}

// disabledTimeout stands for "no timeout" (a negative duration).
const disabledTimeout = 100 * 365 * 24 * time.Hour

// withDefaults returns l with zero values replaced by defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = disabledTimeout
		}
	}
	def(&l.MaxLine, DefaultMaxLine)
	if l.MaxLine < 0 {
		l.MaxLine = 1 << 20
	}
	if l.MaxLiteral == 0 {
		l.MaxLiteral = DefaultMaxLiteral
	}
	if l.MaxLiteral < 0 {
		l.MaxLiteral = 1 << 40
	}
	def(&l.MaxConnsPerIP, DefaultMaxConnsPerIP)
	def(&l.MaxConnsPerAccount, DefaultMaxConnsPerAccount)
	def(&l.MaxErrors, DefaultMaxErrors)
	defDur(&l.AutoLogout, DefaultAutoLogout)
	defDur(&l.CommandTimeout, DefaultCommandTimeout)
	return l
}

// limits returns the per-connection limits of o (defaults not applied).
func (o Options) limits() Limits {
	return Limits{
		MaxLine:            o.MaxLine,
		MaxLiteral:         o.MaxLiteral,
		MaxConnsPerIP:      o.MaxConnsPerIP,
		MaxConnsPerAccount: o.MaxConnsPerAccount,
		MaxErrors:          o.MaxErrors,
		AutoLogout:         o.AutoLogout,
		CommandTimeout:     o.CommandTimeout,
	}
}

// withDefaults returns o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Sessions == nil {
		o.Sessions = limit.NewCounter(o.MaxSessions)
	}
	return o
}
