package imapserver

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// view is the selected mailbox as this session's client knows it
// (RFC 9051 2.3.1.2, 5.2, 7.5.1). msgs is what the client was told:
// sequence number = index + 1. Changes from the store's feed (other
// sessions, SMTP, POP3, and this session's own store calls) are folded
// into "what the client has not been told yet" (adds, dirty, expunged)
// and reported by flush, at points the RFC allows:
//
//   - new messages: "* n EXISTS" (any command);
//   - flag changes: "* n FETCH (FLAGS (..) UID u [MODSEQ (m)])" (any command);
//   - expunges: "* n EXPUNGE", or "* VANISHED uids" with QRESYNC
//     (RFC 7162 3.2.10), never while FETCH, STORE or SEARCH respond;
//     until then the message keeps its sequence number.
//
// A change is recognised as already known by its MODSEQ (flags) or UID
// (appends, expunges), so a change the session reported itself (noteFlags,
// reportExpunged) is not reported again when the feed brings it.
type view struct {
	st       store.Store
	acct     int64
	mb       store.Mailbox // as at SELECT (ID, UIDValidity, name)
	readOnly bool

	msgs []viewMsg // the client's view, UID order
	adds []viewMsg // appended, not yet announced by EXISTS
	// early holds flag changes of UIDs beyond the view, whose append has
	// not arrived yet: the store publishes flag changes at commit, which
	// can be before the append of a message still waiting for the disk.
	early    map[uint32]viewMsg
	dirty    map[uint32]struct{} // UIDs in msgs with unreported flag changes
	expunged map[uint32]struct{} // UIDs in msgs expunged, not yet reported
	exists   int                 // the message count the client was last told

	flagSets  [][]string        // interned flag lists; viewMsg.flags indexes it
	flagIndex map[string]uint32 // strings.Join(flags, " ") -> index
	keywords  map[string]struct{}

	highestModSeq uint64   // HIGHESTMODSEQ as reported at SELECT, raised by flush
	searchRes     []uint32 // SEARCHRES "$" (RFC 5182) as UIDs, sorted

	sub    store.Subscription // the account's change feed; nil once closed
	resync bool               // re-read the mailbox from the store at the next flush

	// snap, when set, is the snapshot msgs, flagSets and flagIndex are
	// shared with (viewSnaps); sharedMsgs / sharedFlags say which of them
	// must be copied before they are modified (ownMsgs, ownFlags).
	snap                    *viewSnap
	sharedMsgs, sharedFlags bool
}

// viewMsg is one message as the client knows it.
type viewMsg struct {
	uid    uint32
	flags  uint32 // index into view.flagSets
	modseq uint64
}

// maxPending bounds the unreported changes kept; beyond it the view
// re-reads the mailbox instead (the outcome is the same).
const maxPending = 100000

// systemFlags are always listed in FLAGS and PERMANENTFLAGS.
var systemFlags = []string{store.FlagAnswered, store.FlagFlagged, store.FlagDeleted, store.FlagSeen, store.FlagDraft}

// openView subscribes to the account's feed and reads the mailbox. The
// subscription comes first, so no change after the read can be missed
// (changes from before it are recognised as known). With snaps, a view
// of a mailbox in the state another view was opened in (same
// HIGHESTMODSEQ and UIDNEXT) shares that view's message list instead of
// reading it again (copied when either modifies it).
func openView(ctx context.Context, st store.Store, acct int64, name string, readOnly bool, snaps *viewSnaps) (*view, error) {
	sub := st.Subscribe(acct)
	v := &view{st: st, acct: acct, readOnly: readOnly, sub: sub,
		dirty: map[uint32]struct{}{}, expunged: map[uint32]struct{}{},
		flagIndex: map[string]uint32{}, keywords: map[string]struct{}{}}
	mb, err := st.Mailbox(ctx, acct, name)
	if err != nil {
		sub.Close()
		return nil, err
	}
	v.mb = mb
	v.highestModSeq = mb.HighestModSeq
	if snap := snaps.get(mb); snap != nil {
		v.share(snap)
		v.exists = len(v.msgs)
		return v, nil
	}
	msgs, err := st.Messages(ctx, mb.ID, 1, false)
	if err != nil {
		sub.Close()
		return nil, err
	}
	v.msgs = make([]viewMsg, len(msgs))
	byList := map[*string]uint32{} // the store may share equal flag lists: intern each once
	for i, m := range msgs {
		fl, ok := uint32(0), false
		if len(m.Flags) > 0 {
			fl, ok = byList[&m.Flags[0]]
		}
		if !ok {
			fl = v.intern(m.Flags)
			if len(m.Flags) > 0 {
				byList[&m.Flags[0]] = fl
			}
		}
		v.msgs[i] = viewMsg{uid: m.UID, flags: fl, modseq: m.ModSeq}
	}
	if n := len(msgs); n > 0 && v.mb.UIDNext <= msgs[n-1].UID {
		v.mb.UIDNext = msgs[n-1].UID + 1 // read after the mailbox row
	} else if snaps != nil {
		v.share(snaps.put(mb, v))
	}
	v.exists = len(v.msgs)
	return v, nil
}

// close ends the feed subscription.
func (v *view) close() {
	if v.sub != nil {
		v.sub.Close()
		v.sub = nil
	}
}

// intern returns the index of a flag list (sorted, as the store keeps
// them), adding it and its keywords when new.
func (v *view) intern(flags []string) uint32 {
	key := strings.Join(flags, " ")
	if i, ok := v.flagIndex[key]; ok {
		return i
	}
	v.ownFlags()
	i := uint32(len(v.flagSets))
	v.flagSets = append(v.flagSets, slices.Clone(flags))
	v.flagIndex[key] = i
	return i
}

// flagsOf returns the flags of a viewMsg (shared: do not modify).
func (v *view) flagsOf(m viewMsg) []string { return v.flagSets[m.flags] }

// newKeywords reports whether flags holds a keyword the client was not
// told of in FLAGS, and records it.
func (v *view) newKeywords(flags []string) bool {
	found := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if _, ok := v.keywords[f]; !ok {
			v.keywords[f] = struct{}{}
			found = true
		}
	}
	return found
}

// index returns the position of uid in msgs.
func (v *view) index(uid uint32) (int, bool) {
	return slices.BinarySearchFunc(v.msgs, uid, func(m viewMsg, u uint32) int {
		switch {
		case m.uid < u:
			return -1
		case m.uid > u:
			return 1
		}
		return 0
	})
}

// lastUID is the largest UID the view knows, announced or not.
func (v *view) lastUID() uint32 {
	if n := len(v.adds); n > 0 {
		return v.adds[n-1].uid
	}
	if n := len(v.msgs); n > 0 {
		return v.msgs[n-1].uid
	}
	return 0
}

// count is the number of messages the client knows (its "*").
func (v *view) count() int { return len(v.msgs) }

// seqToUID returns the UID at sequence number seq (1-based).
func (v *view) seqToUID(seq uint32) (uint32, bool) {
	if seq == 0 || int(seq) > len(v.msgs) {
		return 0, false
	}
	return v.msgs[seq-1].uid, true
}

// uidToSeq returns the sequence number of uid.
func (v *view) uidToSeq(uid uint32) (uint32, bool) {
	i, ok := v.index(uid)
	return uint32(i + 1), ok
}

// isExpunged reports whether uid is still in the client's view but gone
// from the store (its expunge not reported yet).
func (v *view) isExpunged(uid uint32) bool {
	_, ok := v.expunged[uid]
	return ok
}

// poll moves what waits on the feed into the view, without blocking.
// Everything the store published before now is there (store.Subscription).
func (v *view) poll() {
	if v.sub == nil {
		return
	}
	for _, c := range v.sub.Take() {
		v.take(c)
	}
}

// take folds one change into the view.
func (v *view) take(c store.Change) {
	switch c.Kind {
	case store.ChangeAppend:
		if c.MailboxID == v.mb.ID {
			v.takeAppend(c.UID, c.Flags, c.ModSeq)
		}
	case store.ChangeFlags:
		if c.MailboxID == v.mb.ID {
			v.takeFlags(c.UID, c.Flags, c.ModSeq)
		}
	case store.ChangeExpunge:
		if c.MailboxID == v.mb.ID {
			v.takeExpunge(c.UID)
		}
	case store.ChangeMailbox:
		if c.MailboxID == v.mb.ID { // renamed, deleted: check at flush
			v.resync = true
		}
	case store.ChangeResync: // changed by another process
		v.resync = true
	default: // Kind 0: changes were dropped; unknown kinds alike
		v.resync = true
	}
	if len(v.adds)+len(v.dirty)+len(v.expunged) > maxPending {
		v.resync = true
	}
}

func (v *view) takeAppend(uid uint32, flags []string, modseq uint64) {
	if uid > v.lastUID() {
		m := viewMsg{uid: uid, flags: v.intern(flags), modseq: modseq}
		if e, ok := v.early[uid]; ok {
			delete(v.early, uid)
			if e.modseq > m.modseq {
				m.flags, m.modseq = e.flags, e.modseq
			}
		}
		v.adds = append(v.adds, m)
	}
}

func (v *view) takeFlags(uid uint32, flags []string, modseq uint64) {
	if i, ok := v.index(uid); ok {
		if _, gone := v.expunged[uid]; !gone && modseq > v.msgs[i].modseq {
			fl := v.intern(flags)
			v.ownMsgs()
			v.msgs[i].flags, v.msgs[i].modseq = fl, modseq
			v.dirty[uid] = struct{}{}
		}
		return
	}
	for i := range v.adds {
		if a := &v.adds[i]; a.uid == uid {
			if modseq > a.modseq {
				a.flags, a.modseq = v.intern(flags), modseq
			}
			return
		}
	}
	if uid > v.lastAddedUID() && len(v.early) < maxPending {
		if e, ok := v.early[uid]; !ok || modseq > e.modseq {
			if v.early == nil {
				v.early = map[uint32]viewMsg{}
			}
			v.early[uid] = viewMsg{uid: uid, flags: v.intern(flags), modseq: modseq}
		}
	}
}

// lastAddedUID is the largest UID the view knows, announced or not.
func (v *view) lastAddedUID() uint32 {
	if n := len(v.adds); n > 0 {
		return v.adds[n-1].uid
	}
	return v.lastUID()
}

func (v *view) takeExpunge(uid uint32) {
	if _, ok := v.index(uid); ok {
		v.expunged[uid] = struct{}{}
		delete(v.dirty, uid)
		return
	}
	v.adds = slices.DeleteFunc(v.adds, func(m viewMsg) bool { return m.uid == uid })
}

// noteFlags records flags this session reports itself (STORE, FETCH
// FLAGS): the same change is then not reported again by flush.
func (v *view) noteFlags(uid uint32, modseq uint64, flags []string) {
	i, ok := v.index(uid)
	if !ok || modseq < v.msgs[i].modseq {
		return
	}
	fl := v.intern(flags)
	v.ownMsgs()
	v.msgs[i].flags, v.msgs[i].modseq = fl, modseq
	delete(v.dirty, uid)
	if modseq > v.highestModSeq {
		v.highestModSeq = modseq
	}
}

// errMailboxGone ends a session whose selected mailbox was deleted (or
// recreated with a new UIDVALIDITY). RFC 9051 leaves this open; like
// Dovecot we say BYE, since no response tells a client its selected
// mailbox went away.
var errMailboxGone = byeErr("", "Selected mailbox was deleted, have to disconnect")

// sync re-reads the mailbox when the feed fell behind or asked for it,
// and folds the difference into the view like feed changes.
func (v *view) sync(ctx context.Context) error {
	if !v.resync {
		return nil
	}
	v.resync = false
	mb, err := v.st.MailboxByID(ctx, v.mb.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && mb.UIDValidity != v.mb.UIDValidity) {
		return errMailboxGone
	}
	if err != nil {
		return err
	}
	v.mb.Name = mb.Name
	msgs, err := v.st.Messages(ctx, v.mb.ID, 1, false)
	if err != nil {
		return err
	}
	inStore := make(map[uint32]struct{}, len(msgs))
	for _, m := range msgs {
		inStore[m.UID] = struct{}{}
		v.takeAppend(m.UID, m.Flags, m.ModSeq)
		v.takeFlags(m.UID, m.Flags, m.ModSeq)
	}
	for _, m := range v.msgs {
		if _, ok := inStore[m.uid]; !ok {
			v.takeExpunge(m.uid)
		}
	}
	v.adds = slices.DeleteFunc(v.adds, func(m viewMsg) bool { _, ok := inStore[m.uid]; return !ok })
	return nil
}

// flush reports what the client has not been told, in this order:
// expunges (if allowed), EXISTS, FLAGS (new keywords), flag FETCHes.
func (v *view) flush(s *session, allowExpunge bool) error {
	v.poll()
	if err := v.sync(s.ctx); err != nil {
		return err
	}
	if allowExpunge && len(v.expunged) > 0 {
		v.reportExpunged(s, nil)
	}
	newKW := false
	if len(v.adds) > 0 {
		for _, a := range v.adds {
			newKW = v.newKeywords(v.flagsOf(a)) || newKW
			v.raiseModSeq(a.modseq)
		}
		v.msgs = append(v.msgs, v.adds...)
		v.adds = v.adds[:0]
	}
	if len(v.msgs) != v.exists {
		v.exists = len(v.msgs)
		s.w.Raw("* ").Number(uint64(v.exists)).Raw(" EXISTS").CRLF()
	}
	if len(v.dirty) == 0 && !newKW {
		return nil
	}
	seqs := make([]int, 0, len(v.dirty))
	for uid := range v.dirty {
		if i, ok := v.index(uid); ok {
			seqs = append(seqs, i)
			newKW = v.newKeywords(v.flagsOf(v.msgs[i])) || newKW
		}
	}
	clear(v.dirty)
	if newKW {
		v.writeFlags(s)
	}
	sort.Ints(seqs)
	for _, i := range seqs {
		v.writeFetchFlags(s, i)
	}
	return nil
}

func (v *view) raiseModSeq(m uint64) {
	if m > v.highestModSeq {
		v.highestModSeq = m
	}
}

// writeFetchFlags writes the unsolicited FETCH of message index i.
// UID is always included (RFC 7162 3.2.4 requires it with QRESYNC and
// it costs nothing otherwise), MODSEQ when CONDSTORE is on (RFC 7162 3.1.4).
func (v *view) writeFetchFlags(s *session, i int) {
	m := v.msgs[i]
	w := s.w
	w.Raw("* ").Number(uint64(i + 1)).Raw(" FETCH (FLAGS (")
	for j, f := range v.flagsOf(m) {
		if j > 0 {
			w.SP()
		}
		w.Raw(f)
	}
	w.Raw(") UID ").Number(uint64(m.uid))
	if s.condstore {
		w.Raw(" MODSEQ (").Number(m.modseq).Raw(")")
	}
	w.Raw(")").CRLF()
	v.raiseModSeq(m.modseq)
}

// writeFlags writes "* FLAGS (...)": system flags and known keywords
// (RFC 9051 7.3.5).
func (v *view) writeFlags(s *session) {
	s.w.Raw("* FLAGS (").Raw(v.flagList()).Raw(")").CRLF()
}

// flagList is the system flags and the keywords seen, space-separated.
func (v *view) flagList() string {
	kws := make([]string, 0, len(v.keywords))
	for k := range v.keywords {
		kws = append(kws, k)
	}
	sort.Strings(kws)
	return strings.Join(append(slices.Clone(systemFlags), kws...), " ")
}

// reportExpunged removes expunged messages from the view and tells the
// client: "* n EXPUNGE" per message (highest first, so the numbers need no
// adjusting), or one "* VANISHED uids" with QRESYNC. uids nil means every
// message in v.expunged; else the given UIDs (this session's own EXPUNGE
// or MOVE), those not in the view being ignored.
func (v *view) reportExpunged(s *session, uids []uint32) {
	gone := v.expunged
	if uids != nil {
		gone = make(map[uint32]struct{}, len(uids))
		for _, u := range uids {
			gone[u] = struct{}{}
		}
	}
	var removed []uint32
	v.ownMsgs()
	keep := v.msgs[:0]
	var seqs []int
	for i, m := range v.msgs {
		if _, ok := gone[m.uid]; ok {
			removed = append(removed, m.uid)
			seqs = append(seqs, i+1)
			delete(v.expunged, m.uid)
			delete(v.dirty, m.uid)
			continue
		}
		keep = append(keep, m)
	}
	v.msgs = keep
	if len(removed) == 0 {
		return
	}
	v.exists -= len(removed)
	v.searchRes = slices.DeleteFunc(v.searchRes, func(u uint32) bool { _, ok := gone[u]; return ok })
	if s.qresync {
		s.w.Raw("* VANISHED ").Raw(imap.FormatUIDs(removed)).CRLF()
		return
	}
	for j := len(seqs) - 1; j >= 0; j-- {
		s.w.Raw("* ").Number(uint64(seqs[j])).Raw(" EXPUNGE").CRLF()
	}
}

// resolve turns a sequence set into UIDs of the view, ascending and
// without duplicates. In sequence mode "*" is the last message and a
// number beyond it is BAD; in UID mode "*" is the largest UID and UIDs
// not in the view are skipped (RFC 9051 6.4.9). "$" is the saved search
// result (RFC 5182). The cost is bounded by the set's size plus the
// result's, whatever the ranges.
func (v *view) resolve(set imap.SeqSet, uidMode bool) ([]uint32, error) {
	if set.Dollar {
		out := make([]uint32, 0, len(v.searchRes))
		for _, u := range v.searchRes {
			if _, ok := v.index(u); ok {
				out = append(out, u)
			}
		}
		return out, nil
	}
	spans := make([][2]int, 0, len(set.Ranges)) // half-open index intervals
	for _, r := range set.Ranges {
		var lo, hi int
		var err error
		if uidMode {
			lo, hi = v.uidSpan(r)
		} else if lo, hi, err = v.seqSpan(r); err != nil {
			return nil, err
		}
		if lo < hi {
			spans = append(spans, [2]int{lo, hi})
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var out []uint32
	next := 0 // first index not yet emitted
	for _, sp := range spans {
		for i := max(sp[0], next); i < sp[1]; i++ {
			out = append(out, v.msgs[i].uid)
		}
		next = max(next, sp[1])
	}
	return out, nil
}

// seqSpan maps a range of sequence numbers to an index interval.
func (v *view) seqSpan(r imap.SeqRange) (int, int, error) {
	n := uint32(len(v.msgs))
	lo, hi := r.Bounds(n)
	if lo == 0 { // "*" in an empty mailbox
		return 0, 0, nil
	}
	if hi > n {
		return 0, 0, bad("", "Invalid message sequence number")
	}
	return int(lo) - 1, int(hi), nil
}

// uidSpan maps a range of UIDs to an index interval.
func (v *view) uidSpan(r imap.SeqRange) (int, int) {
	n := len(v.msgs)
	if n == 0 {
		return 0, 0
	}
	lo, hi := r.Bounds(v.msgs[n-1].uid)
	i := sort.Search(n, func(i int) bool { return v.msgs[i].uid >= lo })
	j := sort.Search(n, func(i int) bool { return v.msgs[i].uid > hi })
	return i, j
}

// setSearchRes saves a SEARCH result for "$" (RFC 5182).
func (v *view) setSearchRes(uids []uint32) {
	v.searchRes = slices.Clone(uids)
	slices.Sort(v.searchRes)
}
