package pop3server

import (
	"strconv"
	"strings"
)

// command is one entry of the command table.
type command struct {
	auth, trans bool // valid in AUTHORIZATION, TRANSACTION
	run         func(s *session, arg string)
}

// commands is the command table (RFC 1939 and its extensions). Read only.
var commands = map[string]command{
	"CAPA": {auth: true, trans: true, run: cmdCapa}, // RFC 2449 5
	"QUIT": {auth: true, trans: true, run: cmdQuit}, // RFC 1939 5 and 6
	"STLS": {auth: true, run: cmdStls},              // RFC 2595 4
	"USER": {auth: true, run: cmdUser},              // RFC 1939 7
	"PASS": {auth: true, run: cmdPass},              // RFC 1939 7
	"AUTH": {auth: true, run: cmdAuth},              // RFC 5034 4
	"STAT": {trans: true, run: cmdStat},             // RFC 1939 5
	"LIST": {trans: true, run: cmdList},             // RFC 1939 5
	"RETR": {trans: true, run: cmdRetr},             // RFC 1939 5
	"DELE": {trans: true, run: cmdDele},             // RFC 1939 5
	"NOOP": {trans: true, run: cmdNoop},             // RFC 1939 5
	"RSET": {trans: true, run: cmdRset},             // RFC 1939 5
	"TOP":  {trans: true, run: cmdTop},              // RFC 1939 7
	"UIDL": {trans: true, run: cmdUidl},             // RFC 1939 7
}

// maxKeyword bounds the keyword echoed into logs.
const maxKeyword = 16

// dispatch runs one command line.
func (s *session) dispatch(line string) {
	if line == "" {
		s.fail("Empty command")
		return
	}
	kw, arg := parseCommand(line)
	c, ok := commands[kw]
	if !ok {
		if len(kw) > maxKeyword {
			kw = kw[:maxKeyword]
		}
		s.log.Debug("unknown command", "keyword", kw)
		s.fail("Unknown command")
		return
	}
	if (s.state == stateAuthorization && !c.auth) || (s.state == stateTransaction && !c.trans) {
		s.fail(kw + " is not valid in this state")
		return
	}
	c.run(s, arg)
}

// parseCommand splits a command line into its keyword, upper-cased, and
// the argument text after the first space (RFC 1939 3: keywords are
// case-insensitive; arguments are separated by a single space). The
// argument is kept as sent: PASS takes the rest of the line verbatim.
func parseCommand(line string) (keyword, arg string) {
	kw, arg, _ := strings.Cut(line, " ")
	return strings.ToUpper(kw), arg
}

// cmdQuit: in AUTHORIZATION it just ends; in TRANSACTION the session
// enters UPDATE and removes the messages marked deleted (RFC 1939 6).
func cmdQuit(s *session, _ string) {
	if s.state != stateTransaction {
		s.state = stateDone
		s.reply("+OK Bye")
		return
	}
	s.state = stateDone
	n, err := s.update()
	// Unlock before the reply, so a client that logs in again as soon as
	// it reads +OK finds the maildrop free.
	s.srv.opts.Maildrops.release(s.account.ID)
	s.drop = nil
	if err != nil {
		s.log.Error("update failed", "err", err)
		s.reply("-ERR [SYS/TEMP] Some deleted messages were not removed")
		return
	}
	if n > 0 {
		s.log.Info("deleted", "messages", n, "mode", s.lim.Delete)
	}
	s.replyf("+OK Bye (%d messages deleted)", n)
}

// cmdStat: RFC 1939 5. Messages marked deleted are not counted.
func cmdStat(s *session, arg string) {
	if arg != "" {
		s.fail("STAT takes no argument")
		return
	}
	s.replyf("+OK %d %d", s.drop.count, s.drop.size)
}

// cmdList: RFC 1939 5.
func cmdList(s *session, arg string) {
	s.scanListing(arg, "LIST", func(n int, m *message) string {
		return strconv.Itoa(n) + " " + strconv.FormatInt(m.size, 10)
	})
}

// cmdUidl: RFC 1939 7.
func cmdUidl(s *session, arg string) {
	s.scanListing(arg, "UIDL", func(n int, m *message) string {
		return strconv.Itoa(n) + " " + m.uidl
	})
}

// scanListing answers LIST and UIDL: one line for a message number, or
// a multi-line listing of every message not marked deleted.
func (s *session) scanListing(arg, name string, line func(n int, m *message) string) {
	arg = strings.TrimSpace(arg)
	if arg != "" {
		n, m, ok := s.message(arg)
		if ok {
			s.reply("+OK " + line(n, m))
		}
		return
	}
	if name == "LIST" {
		s.replyf("+OK %d messages (%d octets)", s.drop.count, s.drop.size)
	} else {
		s.reply("+OK Unique-ID listing follows")
	}
	for i := range s.drop.msgs {
		if m := &s.drop.msgs[i]; !m.deleted {
			s.bw.WriteString(line(i+1, m))
			s.bw.WriteString("\r\n")
		}
	}
	s.reply(".")
}

// message resolves a message-number argument; on failure it has answered
// -ERR already.
func (s *session) message(arg string) (int, *message, bool) {
	n, ok := parseNumber(arg)
	if !ok {
		s.fail("Invalid message number")
		return 0, nil, false
	}
	if n < 1 || n > len(s.drop.msgs) {
		s.fail("No such message")
		return 0, nil, false
	}
	m := &s.drop.msgs[n-1]
	if m.deleted {
		s.fail("Message " + strconv.Itoa(n) + " is deleted")
		return 0, nil, false
	}
	return n, m, true
}

// parseNumber parses a decimal number of at most 9 digits (no sign).
func parseNumber(v string) (int, bool) {
	if v == "" || len(v) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// cmdDele: RFC 1939 5. The message is only marked; QUIT removes it.
func cmdDele(s *session, arg string) {
	n, m, ok := s.message(strings.TrimSpace(arg))
	if !ok {
		return
	}
	m.deleted = true
	s.drop.count--
	s.drop.size -= m.size
	s.replyf("+OK Message %d deleted", n)
}

// cmdNoop: RFC 1939 5.
func cmdNoop(s *session, arg string) {
	if arg != "" {
		s.fail("NOOP takes no argument")
		return
	}
	s.reply("+OK")
}

// cmdRset: RFC 1939 5. Unmarks every message marked deleted.
func cmdRset(s *session, arg string) {
	if arg != "" {
		s.fail("RSET takes no argument")
		return
	}
	s.drop.count, s.drop.size = 0, 0
	for i := range s.drop.msgs {
		m := &s.drop.msgs[i]
		m.deleted = false
		s.drop.count++
		s.drop.size += m.size
	}
	s.replyf("+OK Maildrop has %d messages (%d octets)", s.drop.count, s.drop.size)
}

// cmdRetr: RFC 1939 5.
func cmdRetr(s *session, arg string) {
	n, m, ok := s.message(strings.TrimSpace(arg))
	if !ok {
		return
	}
	s.send(n, m, -1)
}

// cmdTop: RFC 1939 7. "TOP msg n": the header, the blank line and the
// first n lines of the body.
func cmdTop(s *session, arg string) {
	f := strings.Fields(arg)
	if len(f) != 2 {
		s.fail("Usage: TOP message lines")
		return
	}
	lines, ok := parseNumber(f[1])
	if !ok && strings.Trim(f[1], "0123456789") == "" {
		lines, ok = 1<<31, true // more lines than any message has
	}
	if !ok {
		s.fail("Invalid line count")
		return
	}
	n, m, ok := s.message(f[0])
	if !ok {
		return
	}
	s.send(n, m, lines)
}
