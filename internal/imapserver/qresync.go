package imapserver

import (
	"strconv"

	"pillarbox/internal/imap"
)

// qresyncParams is SELECT's QRESYNC parameter (RFC 7162 3.2.5):
// (uidvalidity modseq [known-uids [(known-seqs known-uids)]]).
type qresyncParams struct {
	uidValidity uint32
	modSeq      uint64
	knownUIDs   *imap.SeqSet // nil: every UID the client may know
}

func parseQresync(v imap.Value) (*qresyncParams, error) {
	items, err := listArg(v)
	if err != nil {
		return nil, err
	}
	if len(items) < 2 || len(items) > 4 {
		return nil, bad("", "QRESYNC takes (uidvalidity modseq [known-uids [seq-match]])")
	}
	var p qresyncParams
	uv, err1 := numberArg(items[0], 32)
	ms, err2 := numberArg(items[1], 63)
	if err1 != nil || err2 != nil || uv == 0 || ms == 0 {
		return nil, bad("", "Invalid QRESYNC uidvalidity or modseq")
	}
	p.uidValidity, p.modSeq = uint32(uv), ms
	if len(items) >= 3 {
		if items[2].Kind != imap.KindAtom {
			return nil, bad("", "Invalid QRESYNC known-uids")
		}
		set, err := imap.ParseSeqSet(items[2].Atom)
		if err != nil || set.Dollar {
			return nil, bad("", "Invalid QRESYNC known-uids")
		}
		p.knownUIDs = &set
	}
	// The sequence match data (items[3]) only helps a server that has no
	// expunge history; ours keeps tombstones, so it is not needed.
	return &p, nil
}

// numberArg parses an atom as an unsigned number of at most bits bits.
func numberArg(v imap.Value, bits int) (uint64, error) {
	if v.Kind != imap.KindAtom {
		return 0, bad("", "Expected a number")
	}
	n, err := strconv.ParseUint(v.Atom, 10, bits)
	if err != nil {
		return 0, bad("", "Invalid number")
	}
	return n, nil
}

// qresyncSelect sends what changed since the client's modseq (RFC 7162
// 3.2.5.1): "* VANISHED (EARLIER) uids" for expunged known UIDs, then a
// FETCH (FLAGS UID MODSEQ) for every message of the view changed since.
// UIDs still in the view are never reported vanished here: their expunge
// reaches the view through the feed and is reported by flush.
func (s *session) qresyncSelect(v *view, p *qresyncParams) error {
	if p.uidValidity != v.mb.UIDValidity {
		return nil // the client must resynchronise fully
	}
	st := s.srv.opts.Store
	gone, err := st.Vanished(s.ctx, v.mb.ID, p.modSeq)
	if err != nil {
		return err
	}
	var vanished []uint32
	for _, u := range gone {
		if _, inView := v.index(u); inView || u >= v.mb.UIDNext {
			continue
		}
		if p.knownUIDs == nil || p.knownUIDs.Contains(u, v.mb.UIDNext-1) {
			vanished = append(vanished, u)
		}
	}
	if len(vanished) > 0 {
		s.w.Raw("* VANISHED (EARLIER) ").Raw(imap.FormatUIDs(vanished)).CRLF()
	}
	changed, err := st.ChangedSince(s.ctx, v.mb.ID, p.modSeq)
	if err != nil {
		return err
	}
	for _, m := range changed {
		i, ok := v.index(m.UID)
		if !ok || v.msgs[i].modseq > m.ModSeq {
			continue // appended after the SELECT snapshot, or newer in the view
		}
		v.noteFlags(m.UID, m.ModSeq, m.Flags)
		v.writeFetchFlags(s, i)
	}
	return nil
}
