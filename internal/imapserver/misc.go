package imapserver

import (
	"pillarbox/internal/imap"
)

// cmdNoop: RFC 9051 6.1.2 (and CHECK, RFC 3501 6.4.1). Pending mailbox
// updates are sent by dispatch before the tagged OK.
func cmdNoop(s *session, c *imap.Command) error {
	return wantArgs(c, 0, 0)
}

// cmdLogout: RFC 9051 6.1.3.
func cmdLogout(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	s.w.Raw("* BYE Logging out").CRLF()
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	s.state = stateLogout
	return nil
}

// cmdEnable: RFC 5161, RFC 9051 6.3.1. Only extensions not enabled
// before are listed in "* ENABLED"; unknown ones are ignored.
func cmdEnable(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, -1); err != nil {
		return err
	}
	var enabled []string
	for _, a := range c.Args {
		name, err := atomArg(a)
		if err != nil {
			return err
		}
		switch name {
		case "CONDSTORE":
			if !s.condstore {
				enabled = append(enabled, "CONDSTORE")
				s.enableCondstore()
			}
		case "QRESYNC": // RFC 7162 3.2.3: implies CONDSTORE
			if !s.qresync {
				enabled = append(enabled, "QRESYNC")
				s.qresync = true
				s.enableCondstore()
			}
		case "UTF8=ACCEPT": // RFC 6855 3
			if !s.utf8 {
				enabled = append(enabled, "UTF8=ACCEPT")
				s.utf8 = true
				s.w.SetUTF8(true)
			}
		case "IMAP4REV2": // RFC 9051 6.3.1
			if !s.rev2 {
				enabled = append(enabled, "IMAP4rev2")
				s.rev2 = true
			}
		}
	}
	s.w.Raw("* ENABLED")
	for _, e := range enabled {
		s.w.SP().Raw(e)
	}
	s.w.CRLF()
	return nil
}

// enableCondstore turns CONDSTORE on (RFC 7162 3.1: ENABLE or the first
// CONDSTORE-enabling command). With a mailbox selected, the client learns
// its HIGHESTMODSEQ at once (RFC 7162 3.1.2.1).
func (s *session) enableCondstore() {
	if s.condstore {
		return
	}
	s.condstore = true
	if s.sel != nil {
		s.w.Raw("* OK [HIGHESTMODSEQ ").Number(s.sel.highestModSeq).Raw("] Highest").CRLF()
	}
}

// maxIDParams bounds what is logged of a client's ID (RFC 2971 3.3: at
// most 30 pairs, values up to 1024 octets).
const maxIDParams = 30

// cmdID: RFC 2971. The client's fields are logged; we name ourselves
// without a version.
func cmdID(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 1); err != nil {
		return err
	}
	a := c.Args[0]
	if !a.IsNIL() {
		items, err := listArg(a)
		if err != nil {
			return err
		}
		if len(items)%2 != 0 || len(items) > 2*maxIDParams {
			return bad("", "ID takes up to 30 field/value pairs")
		}
		var attrs []any
		for i := 0; i < len(items); i += 2 {
			k, err1 := astring(items[i])
			if err1 != nil {
				return err1
			}
			v := "NIL"
			if !items[i+1].IsNIL() {
				var err2 error
				if v, err2 = astring(items[i+1]); err2 != nil {
					return err2
				}
			}
			if len(k) > 30 || len(v) > 1024 {
				return bad("", "ID field or value too long")
			}
			attrs = append(attrs, k, v)
		}
		s.log.Info("client id", attrs...)
	}
	s.w.Raw(`* ID ("name" "Pillarbox")`).CRLF()
	return nil
}

// cmdNamespace: RFC 2342, RFC 9051 6.3.10. One personal namespace, no
// other users' or shared ones.
func cmdNamespace(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	s.w.Raw(`* NAMESPACE (("" "/")) NIL NIL`).CRLF()
	return nil
}
