package smtpserver

import (
	"time"

	smtp "github.com/emersion/go-smtp"
)

// Limits are the per-connection limits of a Server. They start as the
// Options fields of the same names and are replaced by SetLimits; zero
// fields take the defaults and negative ones disable the limit, as in
// Options.
//
// Every connection takes a snapshot of the limits when it is admitted and
// keeps it to its end: a change applies to new connections only.
type Limits struct {
	MaxMessageBytes int64 // SIZE; MAIL SIZE= and DATA/BDAT beyond it get 552 5.3.4
	MaxRecipients   int   // RCPT beyond it get 452 4.5.3
	MaxLineLength   int   // command line length including CRLF; longer gets 500 5.5.2
	MaxConnsPerIP   int   // concurrent connections from one IP; more get 421 4.7.0
	MaxErrors       int   // error replies before 421 4.7.0 and close
	CommandTimeout  time.Duration
	DataTimeout     time.Duration // longest silence inside DATA/BDAT content
}

// disabledTimeout stands for "no timeout" (a negative Options timeout).
const disabledTimeout = 100 * 365 * 24 * time.Hour

// withDefaults returns l with zero values replaced by defaults and
// negative ones by what the code below checks for "disabled".
func (l Limits) withDefaults() Limits {
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
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
	def64(&l.MaxMessageBytes, DefaultMaxMessageBytes)
	def(&l.MaxRecipients, DefaultMaxRecipients)
	def(&l.MaxLineLength, DefaultMaxLineLength)
	def(&l.MaxConnsPerIP, DefaultMaxConnsPerIP)
	def(&l.MaxErrors, DefaultMaxErrors)
	defDur(&l.CommandTimeout, DefaultCommandTimeout)
	defDur(&l.DataTimeout, DefaultDataTimeout)
	if l.MaxLineLength < 0 {
		l.MaxLineLength = 1 << 20
	}
	return l
}

// generation is one set of limits with the go-smtp server that applies
// them. go-smtp reads its Server's fields from every connection goroutine
// without locking (EHLO SIZE and LIMITS, MAIL SIZE=, RCPT count, the DATA
// reader, BDAT), so a live smtp.Server is never changed: SetLimits makes a
// new generation, and connections admitted afterwards are served by its
// smtp.Server while older ones keep theirs.
type generation struct {
	lim Limits
	gs  *smtp.Server
}

// newGeneration builds the go-smtp server for lim (already with defaults).
func (s *Server) newGeneration(lim Limits) *generation {
	gs := smtp.NewServer(backendAdapter{s})
	gs.Domain = s.opts.Hostname
	gs.MaxLineLength = 0 // our framing layer enforces line limits
	gs.AllowInsecureAuth = true
	gs.EnableSMTPUTF8 = true
	gs.EnableDSN = true
	gs.EnableBINARYMIME = true
	gs.EnableREQUIRETLS = true
	gs.ErrorLog = errorLog{s.log}
	if lim.MaxRecipients > 0 {
		gs.MaxRecipients = lim.MaxRecipients
	}
	if lim.MaxMessageBytes > 0 {
		// One more than the limit: go-smtp's DATA reader refuses a message
		// of exactly its limit (it fails the read after the last allowed
		// byte, before seeing the end), while RFC 1870 allows SIZE octets.
		// The real limit is ours: advertised in EHLO (replyLine), checked
		// at MAIL SIZE= (session.Mail) and on the bytes received (receive).
		gs.MaxMessageBytes = lim.MaxMessageBytes + 1
	}
	// TLSConfig stays nil in go-smtp: STARTTLS and implicit TLS are done
	// by our framing layer (see conn.startTLS).
	return &generation{lim: lim, gs: gs}
}

// SetLimits replaces the limits for connections accepted from now on;
// connections already open keep the limits they started with. Safe to
// call at any time from any goroutine (for example on SIGHUP).
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.gen.Store(s.newGeneration(l))
	s.log.Info("limits set", "message_bytes", l.MaxMessageBytes, "recipients", l.MaxRecipients,
		"line_length", l.MaxLineLength, "conns_per_ip", l.MaxConnsPerIP, "errors", l.MaxErrors,
		"command_timeout", l.CommandTimeout.String(), "data_timeout", l.DataTimeout.String())
}

// Limits returns the limits new connections get (defaults filled in).
func (s *Server) Limits() Limits {
	return s.gen.Load().lim
}
