package imapserver

import (
	"errors"
	"fmt"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// cmdCopy: COPY, UID COPY (RFC 9051 6.4.7, 6.4.9), MOVE and UID MOVE
// (RFC 6851, RFC 9051 6.4.8).
//
// The destination must exist: NO [TRYCREATE] otherwise (RFC 9051
// 6.4.7). The copy is atomic (one store operation); over quota it is
// NO [OVERQUOTA] and nothing is copied. Flags and internal dates are kept.
// With UIDPLUS (RFC 4315 3) the tagged OK of COPY carries
// [COPYUID uidvalidity src-uids dst-uids]; MOVE sends it in an untagged
// OK before the expunges (RFC 6851 4.3), then "* n EXPUNGE" per message
// or one "* VANISHED" with QRESYNC, and with CONDSTORE the tagged OK
// carries [HIGHESTMODSEQ n] as after EXPUNGE (RFC 6851 4, RFC 7162).
// Messages expunged elsewhere whose expunge the client has not been told
// of are skipped; a set that leaves nothing to copy is OK without
// COPYUID. MOVE needs a read-write mailbox; COPY works on EXAMINE too.
// Copying or moving into the selected mailbox itself works: the new
// messages are announced by EXISTS before the tagged OK.
func cmdCopy(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	set, err := seqSetArg(c.Args[0])
	if err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[1])
	if err != nil {
		return err
	}
	move := strings.HasSuffix(c.Name, "MOVE")
	v := s.sel
	uids, err := v.resolve(set, strings.HasPrefix(c.Name, "UID "))
	if err != nil {
		return err
	}
	if move && v.readOnly {
		return no("CANNOT", "Mailbox is read-only")
	}
	st := s.srv.opts.Store
	dst, err := st.Mailbox(s.ctx, s.account.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return no("TRYCREATE", "Mailbox does not exist")
	}
	if err != nil {
		return storeErr(err)
	}
	live := uids[:0:0]
	for _, u := range uids {
		if !v.isExpunged(u) {
			live = append(live, u)
		}
	}
	if len(live) == 0 {
		return nil
	}
	var pairs []store.UIDPair
	if move {
		pairs, err = st.Move(s.ctx, v.mb.ID, live, dst.ID)
	} else {
		pairs, err = st.Copy(s.ctx, v.mb.ID, live, dst.ID)
	}
	if err != nil {
		return copyErr(err)
	}
	if len(pairs) == 0 { // all expunged meanwhile
		return nil
	}
	src, dsts := make([]uint32, len(pairs)), make([]uint32, len(pairs))
	for i, p := range pairs {
		src[i], dsts[i] = p.Src, p.Dst
	}
	// Pairs are in source UID order and destination UIDs ascend with
	// them, so the two compact sets correspond element by element.
	code := fmt.Sprintf("COPYUID %d %s %s", dst.UIDValidity, imap.FormatUIDs(src), imap.FormatUIDs(dsts))
	if !move {
		s.okCode = code
		return nil
	}
	s.w.Raw("* OK [").Raw(code).Raw("] Moved").CRLF()
	v.reportExpunged(s, src)
	s.expungeModSeq(v)
	return nil
}

// copyErr maps a store error of Copy/Move.
func copyErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound): // the destination went away meanwhile
		return no("TRYCREATE", "Mailbox does not exist")
	case errors.Is(err, store.ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded")
	}
	return storeErr(err)
}
