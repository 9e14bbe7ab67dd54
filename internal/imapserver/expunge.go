package imapserver

import (
	"strconv"

	"pillarbox/internal/imap"
)

// cmdExpunge: EXPUNGE (RFC 9051 6.4.3) and UID EXPUNGE (RFC 4315 2.1,
// RFC 9051 6.4.9). Every message with \Deleted goes (for UID EXPUNGE only
// those in the UID set), as the store has them now: a message flagged by
// another session counts, one unflagged meanwhile does not. Like CLOSE
// (select.go), which removes the same messages without responses. The
// client is told at once, "* n EXPUNGE" per message (highest first) or
// one "* VANISHED uids" with QRESYNC; expunges made elsewhere follow from
// the usual update. With CONDSTORE on, the tagged OK carries
// [HIGHESTMODSEQ n] (RFC 7162: the example "OK [HIGHESTMODSEQ ...]
// expunged" after VANISHED). A read-only mailbox gives NO.
func cmdExpunge(s *session, c *imap.Command) error {
	uidMode := c.Name == "UID EXPUNGE"
	var inSet map[uint32]bool
	if uidMode {
		if err := wantArgs(c, 1, 1); err != nil {
			return err
		}
		set, err := seqSetArg(c.Args[0])
		if err != nil {
			return err
		}
		uids, err := s.sel.resolve(set, true)
		if err != nil {
			return err
		}
		inSet = make(map[uint32]bool, len(uids))
		for _, u := range uids {
			inSet[u] = true
		}
	} else if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	v := s.sel
	if v.readOnly {
		return no("CANNOT", "Mailbox is read-only")
	}
	deleted, err := deletedUIDs(s, v.mb.ID)
	if err != nil {
		return err
	}
	if uidMode {
		keep := deleted[:0]
		for _, u := range deleted {
			if inSet[u] {
				keep = append(keep, u)
			}
		}
		deleted = keep
	}
	if len(deleted) > 0 {
		gone, err := s.srv.opts.Store.Expunge(s.ctx, v.mb.ID, deleted)
		if err != nil {
			return storeErr(err)
		}
		v.reportExpunged(s, gone)
	}
	s.expungeModSeq(v)
	return nil
}

// expungeModSeq puts [HIGHESTMODSEQ n] on the tagged OK of EXPUNGE, UID
// EXPUNGE and MOVE when CONDSTORE is on: the mailbox's HIGHESTMODSEQ
// after the expunges, read back from the store. Changes of other sessions
// it may include are reported by the update that precedes the tagged OK
// (expunges are not held for these commands), or by a later one if the
// feed brings them after that.
func (s *session) expungeModSeq(v *view) {
	if !s.condstore {
		return
	}
	mb, err := s.srv.opts.Store.MailboxByID(s.ctx, v.mb.ID)
	if err != nil {
		s.log.Warn("reading HIGHESTMODSEQ after expunge", "err", err)
		return
	}
	s.okCode = "HIGHESTMODSEQ " + strconv.FormatUint(mb.HighestModSeq, 10)
}
