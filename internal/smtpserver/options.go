package smtpserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/limit"
	"pillarbox/internal/store"
)

// Mode selects what an endpoint is for.
type Mode int

const (
	// ModeMX receives mail for local domains (port 25): STARTTLS offered
	// when TLSConfig is set, AUTH neither offered nor accepted.
	ModeMX Mode = iota
	// ModeSubmission is message submission on port 587 (RFC 6409):
	// STARTTLS, AUTH only after TLS, MAIL requires AUTH.
	ModeSubmission
	// ModeSubmissions is submission with implicit TLS on port 465
	// (RFC 8314 3.3): every connection is TLS from the first byte.
	ModeSubmissions
)

// String returns a short name for logs.
func (m Mode) String() string {
	switch m {
	case ModeMX:
		return "mx"
	case ModeSubmission:
		return "submission"
	case ModeSubmissions:
		return "submissions"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

func (m Mode) submission() bool { return m == ModeSubmission || m == ModeSubmissions }

// Defaults used when the corresponding Options field is zero. A negative
// limit disables that limit.
const (
	DefaultMaxMessageBytes = 50 << 20
	DefaultMaxRecipients   = 100
	DefaultMaxLineLength   = 2000 // RFC 5321 4.5.3.1.4 says 512; twice the text-line limit leaves room for extensions
	DefaultMaxConnsPerIP   = 20
	DefaultMaxSessions     = 1000
	DefaultMaxErrors       = 10
	DefaultCommandTimeout  = 5 * time.Minute // RFC 5321 4.5.3.2.7
	DefaultDataTimeout     = 5 * time.Minute // per read; RFC 5321 4.5.3.2.5/6
)

// Options configure a Server. Backend is required; Auth is required for the
// submission modes; TLSConfig is required for ModeSubmissions.
type Options struct {
	Mode      Mode
	Hostname  string // greeting, EHLO and Received name
	TLSConfig *tls.Config
	Backend   Backend
	Auth      Authenticator
	Logger    *slog.Logger
	Now       func() time.Time

	MaxMessageBytes int64 // SIZE; DATA/BDAT beyond it get 552 5.3.4
	MaxRecipients   int   // RCPT beyond it get 452 4.5.3
	MaxLineLength   int   // command line length including CRLF; longer gets 500 5.5.2
	MaxConnsPerIP   int   // concurrent connections from one IP; more get 421 4.7.0
	MaxSessions     int   // concurrent connections in total; more get 421 4.7.0 (unused when Sessions is set)
	MaxErrors       int   // error replies before 421 4.7.0 and close
	CommandTimeout  time.Duration
	DataTimeout     time.Duration // longest silence inside DATA/BDAT content

	// Sessions, when set, is the concurrent-session limit shared with
	// other endpoints (one slot per connection, over all of them); its
	// maximum may be changed at any time with SetMax. When nil the Server
	// makes its own counter of MaxSessions.
	Sessions *limit.Counter

	// Rand is the source of connection IDs (default crypto/rand).
	Rand io.Reader
}

// Authenticator is what the submission modes use for SMTP AUTH (RFC 4954).
// *auth.Authenticator satisfies it.
type Authenticator interface {
	Mechanisms(tls bool) []string
	NewServer(ctx context.Context, mech string, remote netip.Addr) (auth.Server, error)
}

// SessionInfo describes the client side of a session. The server updates
// it as the session goes on (Helo after EHLO, TLS after STARTTLS, Account
// after AUTH); backends read it during their calls and must not keep it.
type SessionInfo struct {
	ConnID  string
	Remote  netip.AddrPort
	Helo    string
	TLS     bool
	Mode    Mode
	Account *store.Account
}

// Recipient is one accepted RCPT TO.
type Recipient struct {
	Address string // mailbox as the client wrote it (source route dropped), no angle brackets
	ORcpt   string // RFC 3461 ORCPT as "type;address" with xtext decoded, or ""
	Notify  string // RFC 3461 NOTIFY values joined by ",", upper case, or ""
	Token   any    // what Backend.CheckRecipient returned
}

// Envelope is one mail transaction.
type Envelope struct {
	From       string // reverse-path without angle brackets; "" for the null sender
	Recipients []Recipient
	SMTPUTF8   bool   // RFC 6531
	Body       string // "", "7BIT", "8BITMIME" or "BINARYMIME" (RFC 6152, RFC 3030)
	Ret        string // RFC 3461 RET: "", "FULL" or "HDRS"
	EnvID      string // RFC 3461 ENVID, xtext decoded
	RequireTLS bool   // RFC 8689
	Size       int64  // bytes of the message handed to Deliver (after Received/Bcc changes)
}

// Error is a protocol error with its reply code. Backends return it to
// choose the reply; any other error becomes 451 4.3.0 with a generic text.
type Error struct {
	Code     int
	Enhanced [3]int
	Message  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

// Backend decides about senders and recipients and stores messages.
type Backend interface {
	// CheckSender vets MAIL FROM (submission: 553 5.7.1 if not the
	// account's own address or alias).
	CheckSender(ctx context.Context, si *SessionInfo, from string) error
	// CheckRecipient vets one RCPT TO; size is the SIZE parameter or 0.
	// The token is handed back in Recipient.Token.
	CheckRecipient(ctx context.Context, si *SessionInfo, rcpt string, size int64) (token any, err error)
	// Deliver stores the message durably and returns the queue ID. msg
	// reads our Received header and the client's message from the start:
	// a *bytes.Reader for a message of up to 128 KiB, else the *os.File
	// from CreateSpool (which the backend may adopt, e.g. by rename). The
	// server closes and removes that file afterwards.
	Deliver(ctx context.Context, si *SessionInfo, env *Envelope, msg io.Reader) (queueID string, err error)
	// CreateSpool returns an empty read-write file for a message too large
	// to hold in memory.
	CreateSpool() (*os.File, error)
}

// limits returns the per-connection limits of o (defaults not applied).
func (o Options) limits() Limits {
	return Limits{
		MaxMessageBytes: o.MaxMessageBytes,
		MaxRecipients:   o.MaxRecipients,
		MaxLineLength:   o.MaxLineLength,
		MaxConnsPerIP:   o.MaxConnsPerIP,
		MaxErrors:       o.MaxErrors,
		CommandTimeout:  o.CommandTimeout,
		DataTimeout:     o.DataTimeout,
	}
}

// withDefaults returns opts with zero values replaced by defaults. The
// per-connection limits are normalised by Limits.withDefaults.
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
		o.Sessions = limit.NewCounter(o.MaxSessions) // negative: unlimited
	}
	return o
}
