package imapserver

import (
	"errors"
	"slices"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// selectParams are the optional SELECT/EXAMINE parameters (RFC 7162 3.1.8, 3.2.5).
type selectParams struct {
	condstore bool
	qresync   *qresyncParams
}

// cmdSelect: SELECT and EXAMINE, RFC 9051 6.3.2 and 6.3.3. A mailbox
// selected before is deselected first (without expunge), also when the
// new SELECT fails.
func cmdSelect(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 2); err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	var p selectParams
	if len(c.Args) == 2 {
		if p, err = s.parseSelectParams(c.Args[1]); err != nil {
			return err
		}
	}
	if s.sel != nil {
		s.deselect()
		s.w.Raw("* OK [CLOSED] Previous mailbox closed").CRLF() // RFC 9051 7.1, RFC 7162 3.2.11
	}
	readOnly := c.Name == "EXAMINE"
	v, err := openView(s.ctx, s.srv.opts.Store, s.account.ID, name, readOnly, s.srv.views)
	if err != nil {
		return storeErr(err)
	}
	if p.condstore || p.qresync != nil {
		s.enableCondstore() // RFC 7162 3.1.8: a CONDSTORE enabling command
	}
	s.sel, s.state = v, stateSelected
	s.writeSelectData(v)
	if p.qresync != nil {
		if err := s.qresyncSelect(v, p.qresync); err != nil {
			return err
		}
	}
	if readOnly {
		s.okCode = "READ-ONLY"
	} else {
		s.okCode = "READ-WRITE"
	}
	return nil
}

// writeSelectData writes the untagged responses of a SELECT.
func (s *session) writeSelectData(v *view) {
	w := s.w
	firstUnseen := 0
	for i, m := range v.msgs {
		fl := v.flagsOf(m)
		v.newKeywords(fl)
		if firstUnseen == 0 && !slices.Contains(fl, store.FlagSeen) {
			firstUnseen = i + 1
		}
	}
	v.writeFlags(s)
	w.Raw("* ").Number(uint64(len(v.msgs))).Raw(" EXISTS").CRLF()
	if !s.rev2 {
		w.Raw("* 0 RECENT").CRLF() // \Recent is not kept (RFC 9051 removed it)
		if firstUnseen > 0 {
			w.Raw("* OK [UNSEEN ").Number(uint64(firstUnseen)).Raw("] First unseen").CRLF()
		}
	}
	w.Raw("* OK [UIDVALIDITY ").Number(uint64(v.mb.UIDValidity)).Raw("] UIDs valid").CRLF()
	w.Raw("* OK [UIDNEXT ").Number(uint64(v.mb.UIDNext)).Raw("] Predicted next UID").CRLF()
	if v.readOnly {
		w.Raw("* OK [PERMANENTFLAGS ()] Read-only mailbox").CRLF()
	} else {
		w.Raw(`* OK [PERMANENTFLAGS (`).Raw(v.flagList()).Raw(` \*)] Flags permitted`).CRLF()
	}
	if s.condstore {
		w.Raw("* OK [HIGHESTMODSEQ ").Number(v.highestModSeq).Raw("] Highest").CRLF()
	}
	if s.rev2 { // RFC 9051 6.3.2: the mailbox's canonical name
		w.Raw("* LIST (")
		if v.mb.SpecialUse != "" {
			w.Raw(v.mb.SpecialUse)
		}
		w.Raw(`) "/" `).Mailbox(v.mb.Name).CRLF()
	}
}

// parseSelectParams parses "(CONDSTORE)" or "(QRESYNC (...))".
func (s *session) parseSelectParams(v imap.Value) (selectParams, error) {
	var p selectParams
	items, err := listArg(v)
	if err != nil {
		return p, err
	}
	for i := 0; i < len(items); i++ {
		name, err := atomArg(items[i])
		if err != nil {
			return p, err
		}
		switch name {
		case "CONDSTORE":
			p.condstore = true
		case "QRESYNC":
			if !s.qresync { // RFC 7162 3.2.5
				return p, bad("", "QRESYNC is not enabled")
			}
			if i+1 >= len(items) {
				return p, bad("", "QRESYNC needs parameters")
			}
			i++
			if p.qresync, err = parseQresync(items[i]); err != nil {
				return p, err
			}
		default:
			return p, bad("", "Unknown SELECT parameter "+name)
		}
	}
	return p, nil
}

// deselect leaves the selected state without expunging.
func (s *session) deselect() {
	if s.sel != nil {
		s.sel.close()
		s.sel = nil
	}
	if s.state == stateSelected {
		s.state = stateAuth
	}
}

// cmdClose: RFC 9051 6.4.1. Messages with \Deleted are removed (when
// read-write) without EXPUNGE responses.
func cmdClose(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	v := s.sel
	s.deselect()
	if v.readOnly {
		return nil
	}
	uids, err := deletedUIDs(s, v.mb.ID)
	if err != nil {
		return err
	}
	if len(uids) > 0 {
		if _, err := s.srv.opts.Store.Expunge(s.ctx, v.mb.ID, uids); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// deletedUIDs lists the messages of a mailbox that have \Deleted.
func deletedUIDs(s *session, mailboxID int64) ([]uint32, error) {
	msgs, err := s.srv.opts.Store.Messages(s.ctx, mailboxID, 1, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []uint32
	for _, m := range msgs {
		if slices.Contains(m.Flags, store.FlagDeleted) {
			uids = append(uids, m.UID)
		}
	}
	return uids, nil
}

// cmdUnselect: RFC 3691, RFC 9051 6.4.2.
func cmdUnselect(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	s.deselect()
	return nil
}
