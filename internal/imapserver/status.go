package imapserver

import (
	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// statusItems are the STATUS data items we answer (RFC 9051 6.3.11,
// RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT).
var statusItems = map[string]bool{
	"MESSAGES": true, "UIDNEXT": true, "UIDVALIDITY": true, "UNSEEN": true, "DELETED": true,
	"SIZE": true, "RECENT": true, "HIGHESTMODSEQ": true, "APPENDLIMIT": true,
}

// parseStatusItems parses "(MESSAGES UNSEEN ...)".
func parseStatusItems(v imap.Value) ([]string, error) {
	items, err := atomList(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, bad("", "No status data items")
	}
	for _, it := range items {
		if !statusItems[it] {
			return nil, bad("", "Unknown status data item "+it)
		}
	}
	return items, nil
}

// cmdStatus: RFC 9051 6.3.11.
func cmdStatus(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	items, err := parseStatusItems(c.Args[1])
	if err != nil {
		return err
	}
	mb, err := s.srv.opts.Store.Mailbox(s.ctx, s.account.ID, name)
	if err != nil {
		return storeErr(err)
	}
	s.writeStatusData(mb, items)
	return nil
}

// writeStatusData writes "* STATUS name (item value ...)". Asking for
// HIGHESTMODSEQ turns CONDSTORE on (RFC 7162 3.1).
func (s *session) writeStatusData(mb store.Mailbox, items []string) {
	for _, it := range items {
		if it == "HIGHESTMODSEQ" {
			s.enableCondstore()
		}
	}
	w := s.w
	w.Raw("* STATUS ").Mailbox(mb.Name).Raw(" (")
	for i, it := range items {
		if i > 0 {
			w.SP()
		}
		w.Raw(it).SP()
		switch it {
		case "MESSAGES":
			w.Number(uint64(mb.Messages))
		case "UIDNEXT":
			w.Number(uint64(mb.UIDNext))
		case "UIDVALIDITY":
			w.Number(uint64(mb.UIDValidity))
		case "UNSEEN":
			w.Number(uint64(mb.Unseen))
		case "DELETED":
			w.Number(uint64(mb.Deleted))
		case "SIZE":
			w.Number(uint64(mb.Size))
		case "RECENT":
			w.Number(0) // \Recent is not kept
		case "HIGHESTMODSEQ":
			w.Number(mb.HighestModSeq)
		case "APPENDLIMIT":
			w.Number(uint64(s.lim.MaxLiteral))
		}
	}
	w.Raw(")").CRLF()
}
