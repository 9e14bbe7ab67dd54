package imapserver

import (
	"strconv"
	"strings"

	"pillarbox/internal/imap"
)

// The capabilities advertised after login, in one place. Every name here
// is implemented once all command files are in (see commandTable); the
// file or RFC that implements each is noted.
var authCapabilities = []string{
	"IMAP4rev1", "IMAP4rev2", // RFC 3501, RFC 9051
	"ENABLE",             // RFC 5161: misc.go
	"ID",                 // RFC 2971: misc.go
	"IDLE",               // RFC 2177: idle.go
	"NAMESPACE",          // RFC 2342: misc.go
	"UNSELECT",           // RFC 3691: select.go
	"CHILDREN",           // RFC 3348: list.go
	"LIST-EXTENDED",      // RFC 5258: list.go
	"LIST-STATUS",        // RFC 5819: list.go
	"SPECIAL-USE",        // RFC 6154: list.go
	"CREATE-SPECIAL-USE", // RFC 6154: mailbox.go
	"LITERAL+",           // RFC 7888: the imap decoder
	"UIDPLUS",            // RFC 4315: append/copy/expunge files
	"MOVE",               // RFC 6851
	"MULTIAPPEND",        // RFC 3502
	"BINARY",             // RFC 3516
	"ESEARCH",            // RFC 4731
	"SEARCHRES",          // RFC 5182: view.searchRes
	"CONDSTORE",          // RFC 7162
	"QRESYNC",            // RFC 7162
	"STATUS=SIZE",        // RFC 8438: status.go
	"UTF8=ACCEPT",        // RFC 6855: misc.go (ENABLE), names
	"QUOTA",              // RFC 9208
	"QUOTA=RES-STORAGE",  // RFC 9208
}

// capabilities returns what the session advertises now (RFC 9051 7.2.2):
// before authentication STARTTLS (plain 143 only), and either the SASL
// mechanisms or LOGINDISABLED; after it the full list with APPENDLIMIT.
func (s *session) capabilities() []string {
	if s.state != stateNotAuth {
		caps := append([]string(nil), authCapabilities...)
		return append(caps, "APPENDLIMIT="+strconv.FormatInt(s.lim.MaxLiteral, 10)) // RFC 7889
	}
	caps := []string{"IMAP4rev1", "IMAP4rev2"}
	if !s.isTLS && s.srv.opts.TLSConfig != nil {
		caps = append(caps, "STARTTLS")
	}
	mechs := s.srv.opts.Auth.Mechanisms(s.isTLS)
	if len(mechs) == 0 {
		caps = append(caps, "LOGINDISABLED")
	} else {
		for _, m := range mechs {
			caps = append(caps, "AUTH="+m)
		}
		caps = append(caps, "SASL-IR") // RFC 4959
	}
	return append(caps, "ID", "ENABLE", "LITERAL+")
}

func (s *session) capabilityString() string {
	return strings.Join(s.capabilities(), " ")
}

// cmdCapability: RFC 9051 6.1.1.
func cmdCapability(s *session, c *imap.Command) error {
	if len(c.Args) != 0 {
		return bad("", "CAPABILITY takes no arguments")
	}
	s.w.Raw("* CAPABILITY ").Raw(s.capabilityString()).CRLF()
	return nil
}
