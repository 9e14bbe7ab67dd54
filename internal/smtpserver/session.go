package smtpserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	smtp "github.com/emersion/go-smtp"
)

// backendAdapter is go-smtp's Backend: one session per connection.
type backendAdapter struct{ s *Server }

func (b backendAdapter) NewSession(sc *smtp.Conn) (smtp.Session, error) {
	c, ok := sc.Conn().(*conn)
	if !ok {
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Internal error"}
	}
	return &session{c: c}, nil
}

// transaction is one MAIL transaction with the session facts it was
// started under (they cannot change inside it: EHLO ends it, STARTTLS and
// AUTH are refused in it). Data runs on go-smtp's BDAT goroutine and only
// reads this snapshot.
type transaction struct {
	id       string // our Received "id"
	env      Envelope
	info     SessionInfo
	esmtp    bool
	tlsState *tls.ConnectionState
	size     int64 // SIZE parameter
}

// session implements go-smtp's Session and AuthSession.
type session struct {
	c  *conn
	mu sync.Mutex // guards tx: Data may run on go-smtp's BDAT goroutine
	tx *transaction
}

var _ smtp.AuthSession = (*session)(nil)

func smtpErr(code int, enh [3]int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: msg}
}

var (
	errTemp       = smtpErr(451, [3]int{4, 3, 0}, "Temporary local problem, try again later")
	errInternal   = smtpErr(421, [3]int{4, 3, 0}, "Internal error, closing connection")
	errNoHelo     = smtpErr(503, [3]int{5, 5, 1}, "Send EHLO or HELO first")
	errNestedMail = smtpErr(503, [3]int{5, 5, 1}, "Nested MAIL command")
	errNoMail     = smtpErr(503, [3]int{5, 5, 1}, "Send MAIL first")
	errNeedTLS    = smtpErr(530, [3]int{5, 7, 0}, "Must issue a STARTTLS command first")
	errNeedAuth   = smtpErr(530, [3]int{5, 7, 0}, "Authentication required")
	errRequireTLS = smtpErr(530, [3]int{5, 7, 10}, "REQUIRETLS needs a TLS session")
	errBadFrom    = smtpErr(501, [3]int{5, 1, 7}, "Bad sender address syntax")
	errBadRcpt    = smtpErr(501, [3]int{5, 1, 3}, "Bad recipient address syntax")
	errUTF8Addr   = smtpErr(553, [3]int{5, 6, 7}, "Non-ASCII address needs SMTPUTF8")
)

// backendErr turns a Backend error into a reply: *Error passes through,
// anything else is logged and becomes 451 4.3.0 (never shown to clients).
func (c *conn) backendErr(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return smtpErr(e.Code, e.Enhanced, e.Message)
	}
	c.log.Error("backend failed", "op", op, "err", err)
	return errTemp
}

// catch is deferred by every Session method: a panic is logged, answered
// with 421 and closes this connection only.
func (c *conn) catch(where string, err *error) {
	if r := recover(); r != nil {
		c.logPanic(where, r)
		c.killAfter.Store(true)
		*err = errInternal
	}
}

func (s *session) Reset() {
	s.mu.Lock()
	s.tx = nil
	s.mu.Unlock()
	s.c.setInTx(false)
}

func (s *session) Logout() error { return nil }

func (s *session) current() *transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tx
}

// Mail is MAIL FROM (RFC 5321 4.1.1.2; RFC 1870, 6152, 3030, 6531, 3461, 8689 parameters).
func (s *session) Mail(_ string, opts *smtp.MailOptions) (err error) {
	c := s.c
	defer c.catch("mail", &err)
	switch {
	case c.info.Helo == "":
		return errNoHelo
	case s.current() != nil:
		return errNestedMail
	case c.info.Mode.submission() && !c.info.TLS:
		return errNeedTLS // RFC 3207 4, RFC 8314
	case c.info.Mode.submission() && c.info.Account == nil:
		return errNeedAuth // RFC 4954 6
	}
	from, perr := pathArg(c.lastLine, "FROM:", true)
	switch {
	case perr != nil:
		return errBadFrom
	case !opts.UTF8 && !isASCII(from):
		return errUTF8Addr // RFC 6531 3.5
	case opts.RequireTLS && !c.info.TLS:
		return errRequireTLS // RFC 8689 4.1
	case c.lim.MaxMessageBytes > 0 && opts.Size > c.lim.MaxMessageBytes:
		return errSizeExceeded // RFC 1870 6.2
	}
	if err := c.s.opts.Backend.CheckSender(c.ctx, &c.info, from); err != nil {
		c.log.Info("sender refused", "from", from, "err", err.Error())
		return c.backendErr("CheckSender", err)
	}
	c.txSeq++
	tx := &transaction{
		id: fmt.Sprintf("%s.%d", c.id, c.txSeq),
		env: Envelope{
			From: from, SMTPUTF8: opts.UTF8, Body: string(opts.Body), Ret: string(opts.Return),
			EnvID: opts.EnvelopeID, RequireTLS: opts.RequireTLS,
		},
		info: c.info, esmtp: c.esmtp, tlsState: c.tlsState, size: opts.Size,
	}
	s.mu.Lock()
	s.tx = tx
	s.mu.Unlock()
	c.setInTx(true)
	// Accepted MAIL and RCPT are logged at debug: "message accepted" names
	// the sender and recipients; refusals are logged with the reply.
	c.log.Debug("mail from", "tx", tx.id, "from", from, "size", opts.Size, "body", string(opts.Body))
	return nil
}

// Rcpt is RCPT TO (RFC 5321 4.1.1.3; RFC 3461 NOTIFY and ORCPT).
func (s *session) Rcpt(_ string, opts *smtp.RcptOptions) (err error) {
	c := s.c
	defer c.catch("rcpt", &err)
	tx := s.current()
	if tx == nil {
		return errNoMail
	}
	to, perr := pathArg(c.lastLine, "TO:", false)
	switch {
	case perr != nil:
		return errBadRcpt
	case !tx.env.SMTPUTF8 && !isASCII(to):
		return errUTF8Addr
	}
	token, err := c.s.opts.Backend.CheckRecipient(c.ctx, &c.info, to, tx.size)
	if err != nil {
		c.log.Info("recipient refused", "tx", tx.id, "to", to, "err", err.Error())
		return c.backendErr("CheckRecipient", err)
	}
	r := Recipient{Address: to, Token: token}
	if len(opts.Notify) > 0 {
		n := make([]string, len(opts.Notify))
		for i, v := range opts.Notify {
			n[i] = string(v)
		}
		r.Notify = strings.Join(n, ",")
	}
	if opts.OriginalRecipient != "" {
		r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
	}
	s.mu.Lock()
	tx.env.Recipients = append(tx.env.Recipients, r)
	s.mu.Unlock()
	c.log.Debug("rcpt to", "tx", tx.id, "to", to)
	return nil
}

// Data is DATA and BDAT (go-smtp unstuffs DATA and joins BDAT chunks).
func (s *session) Data(r io.Reader) (err error) {
	c := s.c
	defer c.catch("data", &err)
	tx := s.current()
	if tx == nil || len(tx.env.Recipients) == 0 {
		_, _ = io.Copy(io.Discard, r)
		return errNoMail
	}
	return c.receive(tx, r)
}
