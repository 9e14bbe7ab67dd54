package imapserver

import (
	"context"
	"errors"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// respError is a command's failure: a tagged NO or BAD, or (typ "BYE")
// an untagged BYE that ends the session. Its text goes to the client, so
// it never carries internal details.
type respError struct {
	typ  string // "NO", "BAD" or "BYE"
	code string // response code without brackets, e.g. "NONEXISTENT"; "" for none
	text string
}

func (e *respError) Error() string {
	if e.code != "" {
		return e.typ + " [" + e.code + "] " + e.text
	}
	return e.typ + " " + e.text
}

// no returns a tagged NO with an optional response code.
func no(code, text string) error { return &respError{typ: "NO", code: code, text: text} }

// bad returns a tagged BAD with an optional response code.
func bad(code, text string) error { return &respError{typ: "BAD", code: code, text: text} }

// byeErr ends the session with "* BYE [code] text" instead of a tagged reply.
func byeErr(code, text string) error { return &respError{typ: "BYE", code: code, text: text} }

// Command states (a bit set of the states a command is valid in).
type states uint8

const (
	inNotAuth states = 1 << iota
	inAuth
	inSelected

	inAny     = inNotAuth | inAuth | inSelected
	inAuthAny = inAuth | inSelected
)

func (st states) has(x state) bool {
	switch x {
	case stateNotAuth:
		return st&inNotAuth != 0
	case stateAuth:
		return st&inAuth != 0
	case stateSelected:
		return st&inSelected != 0
	}
	return false
}

// handler runs one command (see doc.go for the conventions).
type handler func(s *session, c *imap.Command) error

// command is one entry of the command table.
type command struct {
	states states
	run    handler // nil: not implemented (yet)
	// holdExpunge: while this command responds, expunges are not
	// reported (RFC 9051 7.5.1: not during FETCH, STORE, SEARCH).
	holdExpunge bool
}

// commandTable returns every command the server knows, by upper-case
// name ("UID FETCH" for UID forms). Each Server copies it at New.
func commandTable() map[string]command {
	return map[string]command{
		// Any state (RFC 9051 6.1).
		"CAPABILITY": {states: inAny, run: cmdCapability},
		"NOOP":       {states: inAny, run: cmdNoop},
		"LOGOUT":     {states: inAny, run: cmdLogout},
		"ID":         {states: inAny, run: cmdID}, // RFC 2971
		// Not authenticated (RFC 9051 6.2).
		"STARTTLS":     {states: inNotAuth, run: cmdStartTLS},
		"AUTHENTICATE": {states: inNotAuth, run: cmdAuthenticate},
		"LOGIN":        {states: inNotAuth, run: cmdLogin},
		// Authenticated (RFC 9051 6.3).
		"ENABLE":       {states: inAuthAny, run: cmdEnable},
		"SELECT":       {states: inAuthAny, run: cmdSelect},
		"EXAMINE":      {states: inAuthAny, run: cmdSelect},
		"CREATE":       {states: inAuthAny, run: cmdCreate},
		"DELETE":       {states: inAuthAny, run: cmdDelete},
		"RENAME":       {states: inAuthAny, run: cmdRename},
		"SUBSCRIBE":    {states: inAuthAny, run: cmdSubscribe},
		"UNSUBSCRIBE":  {states: inAuthAny, run: cmdSubscribe},
		"LIST":         {states: inAuthAny, run: cmdList},
		"LSUB":         {states: inAuthAny, run: cmdLsub},
		"NAMESPACE":    {states: inAuthAny, run: cmdNamespace}, // RFC 2342
		"STATUS":       {states: inAuthAny, run: cmdStatus},
		"IDLE":         {states: inAuthAny, run: cmdIdle},     // RFC 2177
		"APPEND":       {states: inAuthAny, run: cmdAppend},   // append.go (RFC 3502 MULTIAPPEND, 4315 APPENDUID)
		"GETQUOTA":     {states: inAuthAny, run: cmdGetQuota}, // quota.go (RFC 9208)
		"GETQUOTAROOT": {states: inAuthAny, run: cmdGetQuotaRoot},
		"SETQUOTA":     {states: inAuthAny, run: cmdSetQuota},
		// Selected (RFC 9051 6.4).
		"CLOSE":       {states: inSelected, run: cmdClose},
		"UNSELECT":    {states: inSelected, run: cmdUnselect}, // RFC 3691
		"CHECK":       {states: inSelected, run: cmdNoop},     // rev1 only; a NOOP here
		"EXPUNGE":     {states: inSelected, run: cmdExpunge},  // expunge.go
		"UID EXPUNGE": {states: inSelected, run: cmdExpunge},  // RFC 4315
		"SEARCH":      {states: inSelected, run: cmdSearchShared, holdExpunge: true},
		"UID SEARCH":  {states: inSelected, run: cmdSearchShared},
		"FETCH":       {states: inSelected, run: cmdFetch, holdExpunge: true},
		"UID FETCH":   {states: inSelected, run: cmdFetch},
		"STORE":       {states: inSelected, holdExpunge: true, run: cmdStore},
		"UID STORE":   {states: inSelected, run: cmdStore},
		"COPY":        {states: inSelected, run: cmdCopy},
		"UID COPY":    {states: inSelected, run: cmdCopy},
		"MOVE":        {states: inSelected, run: cmdCopy}, // RFC 6851
		"UID MOVE":    {states: inSelected, run: cmdCopy},
	}
}

// dispatch runs one command and writes its tagged reply, preceded by
// the mailbox updates the command allows.
func (s *session) dispatch(c *imap.Command) {
	s.okCode, s.okText = "", ""
	cmd, known := s.srv.cmds[c.Name]
	var err error
	switch {
	case !known || (c.Name == "LSUB" && s.rev2):
		err = bad("", "Unknown command")
	case !cmd.states.has(s.state):
		err = bad("", c.Name+" is not valid in this state")
	case cmd.run == nil:
		err = no("CANNOT", c.Name+" is not implemented")
	default:
		err = cmd.run(s, c)
	}
	var re *respError
	switch {
	case err == nil:
	case errors.As(err, &re):
	case errors.Is(err, context.Canceled):
		re = &respError{typ: "BYE", text: "Server shutting down"}
	default:
		s.log.Error("command failed", "command", c.Name, "err", err)
		re = &respError{typ: "NO", code: "UNAVAILABLE", text: "Internal error, try again later"}
	}
	switch {
	case re == errHandled: // the handler wrote its tagged reply
		return
	case re != nil && re.typ == "BYE":
		s.bye(re.code, re.text)
		return
	}
	if s.sel != nil && s.state == stateSelected {
		if uerr := s.sel.flush(s, !cmd.holdExpunge); uerr != nil {
			var ue *respError
			if errors.As(uerr, &ue) && ue.typ == "BYE" {
				s.bye(ue.code, ue.text)
			} else {
				s.log.Error("mailbox update failed", "err", uerr)
				s.bye("UNAVAILABLE", "Internal error")
			}
			return
		}
	}
	if re != nil {
		s.writeStatus(c.Tag, re)
		return
	}
	s.writeStatus(c.Tag, &respError{typ: "OK", code: s.okCode, text: s.okDefault(c.Name)})
}

func (s *session) okDefault(name string) string {
	if s.okText != "" {
		return s.okText
	}
	return name + " completed"
}

// writeStatus writes "tag TYPE [code] text"; a BAD counts as an error.
func (s *session) writeStatus(tag string, r *respError) {
	if r.typ == "BAD" {
		s.errors++
	}
	s.w.Raw(tag).SP().Raw(r.typ).SP()
	if r.code != "" {
		s.w.Raw("[").Raw(r.code).Raw("] ")
	}
	s.w.Raw(r.text).CRLF()
}

// storeErr maps a store error of a mailbox operation to a reply.
func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return no("NONEXISTENT", "No such mailbox")
	case errors.Is(err, store.ErrExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, store.ErrInvalidName):
		return no("CANNOT", "Invalid mailbox name")
	case errors.Is(err, store.ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded")
	case errors.Is(err, store.ErrNotEmpty):
		return no("HASCHILDREN", "Mailbox has children")
	}
	return err
}

// upper is strings.ToUpper for ASCII keywords.
func upper(s string) string { return strings.ToUpper(s) }
