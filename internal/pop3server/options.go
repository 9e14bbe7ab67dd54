package pop3server

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

// Defaults used when the corresponding Limits field is zero. A negative
// limit disables that limit.
const (
	DefaultMaxLine       = 4096 // a command line with CRLF (RFC 2449 4 asks for 255; AUTH responses are longer)
	DefaultMaxConnsPerIP = 20
	DefaultMaxSessions   = 1000
	DefaultMaxErrors     = 20
	DefaultMaxCommands   = 1000000
	DefaultIdleTimeout   = 10 * time.Minute // RFC 1939 3: at least 10 minutes
)

// Deletion modes (Limits.Delete).
const (
	DeleteExpunge = "expunge" // DELE + QUIT expunges: IMAP sees the messages go
	DeleteHide    = "hide"    // DELE + QUIT adds HiddenKeyword: POP3 no longer lists them
)

// HiddenKeyword marks messages deleted over POP3 in DeleteHide mode; POP3
// sessions do not list messages that carry it.
const HiddenKeyword = "$POP3Deleted"

// Options configure a Server. Store and Auth are required; TLSConfig is
// required for ImplicitTLS and enables STLS otherwise.
type Options struct {
	Hostname    string      // for the greeting and logs
	TLSConfig   *tls.Config // STLS, or every connection with ImplicitTLS
	ImplicitTLS bool        // port 995 (RFC 8314): TLS from the first byte
	Store       store.Store
	Auth        Authenticator
	Logger      *slog.Logger
	Now         func() time.Time
	Rand        io.Reader // connection IDs (default crypto/rand)

	// Limits are the initial per-connection limits and settings
	// (SetLimits replaces them).
	Limits Limits

	// Sessions is the concurrent-session limit shared with other
	// endpoints; nil: the Server makes its own of DefaultMaxSessions.
	Sessions *limit.Counter
	// Maildrops is the maildrop lock table and login-delay memory shared
	// by every POP3 Server of the process (110 and 995); nil: the Server
	// makes its own.
	Maildrops *Maildrops
}

// Authenticator checks credentials; *auth.Authenticator satisfies it.
type Authenticator interface {
	Login(ctx context.Context, user, pass string, remote netip.Addr) (store.Account, error)
	NewServer(ctx context.Context, mech string, remote netip.Addr) (auth.Server, error)
}

// Mechanisms are the SASL mechanisms POP3 AUTH offers (RFC 5034).
var mechanisms = []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}

// Limits are the per-connection limits and settings of a Server. Zero
// fields take the defaults, negative ones disable the limit. Every
// connection keeps the snapshot it was admitted with.
type Limits struct {
	MaxLine       int           // bytes of a command line including CRLF
	MaxConnsPerIP int           // concurrent connections from one address
	MaxErrors     int           // bad commands and failed logins before the session is closed
	MaxCommands   int           // commands per session
	IdleTimeout   time.Duration // inactivity before the session is closed (no UPDATE)

	// Maildrop lists the mailboxes served, in order, for accounts
	// without a maildrop of their own (default: INBOX).
	Maildrop []string
	// Delete is DeleteExpunge (default) or DeleteHide.
	Delete string
	// PlaintextLoopback allows USER/PASS and AUTH before STLS to clients
	// on a loopback address.
	PlaintextLoopback bool
	// LoginDelay is the least time between two logins of one account
	// (RFC 2449 6.8); 0: none.
	LoginDelay time.Duration
}

const disabledTimeout = 100 * 365 * 24 * time.Hour

// withDefaults returns l with zero values replaced by defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d, disabled int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = disabled
		}
	}
	def(&l.MaxLine, DefaultMaxLine, 1<<20)
	def(&l.MaxConnsPerIP, DefaultMaxConnsPerIP, 0)
	def(&l.MaxErrors, DefaultMaxErrors, 1<<30)
	def(&l.MaxCommands, DefaultMaxCommands, 1<<62)
	switch {
	case l.IdleTimeout == 0:
		l.IdleTimeout = DefaultIdleTimeout
	case l.IdleTimeout < 0:
		l.IdleTimeout = disabledTimeout
	}
	if len(l.Maildrop) == 0 {
		l.Maildrop = []string{"INBOX"}
	}
	if l.Delete != DeleteHide {
		l.Delete = DeleteExpunge
	}
	if l.LoginDelay < 0 {
		l.LoginDelay = 0
	}
	return l
}

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
	if o.Sessions == nil {
		o.Sessions = limit.NewCounter(DefaultMaxSessions)
	}
	if o.Maildrops == nil {
		o.Maildrops = NewMaildrops()
	}
	return o
}
