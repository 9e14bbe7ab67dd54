package imapserver

import (
	"errors"
	"slices"
	"unsafe"

	"pillarbox/internal/imap"
	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// FETCH and UID FETCH (RFC 9051 6.4.5, 6.4.9, 7.5.2; RFC 3516 BINARY;
// RFC 7162 CHANGEDSINCE, MODSEQ, VANISHED).
//
// Everything is served from what the store computed at delivery: flags,
// MODSEQ, internal date and size from the message row, ENVELOPE,
// BODYSTRUCTURE and the part offsets from Message.Structure, section
// bytes from store.OpenMessage. The message rows of a whole range come
// from one store.Messages call (point reads for a few messages of a big
// mailbox), with the structure only when an item needs it. The rendered
// ENVELOPE, BODY and BODYSTRUCTURE texts are cached per server
// (fetch_cache.go, fetch_load.go): a repeated header FETCH reads the rows
// without their structure and decodes and renders nothing.
//
// Messages expunged by another session but still in the view (their
// EXPUNGE is held during FETCH, RFC 9051 7.5.1) cannot be read any more.
// Like Dovecot, FETCH sends what it can of the other messages and
// answers NO [EXPUNGEISSUED] (RFC 5530); UID FETCH skips them silently,
// since the same command's responses end with their EXPUNGE/VANISHED.
//
// A non-PEEK body fetch sets \Seen in a read-write mailbox, with one
// StoreFlags call for all messages before the responses are written, and
// the new FLAGS (and MODSEQ with CONDSTORE) go into those messages'
// FETCH responses (RFC 9051 6.4.5, RFC 7162 3.1.4).

// flushEvery: the responses are flushed after this many bytes (about), so
// the write deadline is renewed and a slow client holds back the command
// rather than memory.
const flushEvery = 256 << 10

// pointReadMax: up to this many messages, or when the set is small
// against the rest of the mailbox (a point read costs about as much as
// reading 3-4 rows of a range), messages are read one by one instead of
// with one store.Messages call from the first UID to the end.
const pointReadMax = 8

// fetcher runs one FETCH command.
type fetcher struct {
	s       *session
	v       *view
	req     *fetchReq
	st      store.Store
	cache   *fetchCache
	scratch []byte    // reused for ENVELOPE / BODYSTRUCTURE text
	litBuf  []byte    // reused for small section payloads (writeBuf)
	pl      []payload // reused: the section payloads of one message
	pending int       // bytes written since the last flush (estimate)
	gone    bool      // a requested message could not be read (expunged)
	cteErr  error     // an item could not be decoded (UNKNOWN-CTE)
}

// cmdFetch: FETCH and UID FETCH.
func cmdFetch(s *session, c *imap.Command) error {
	req, err := parseFetch(c)
	if err != nil {
		return err
	}
	if req.vanished {
		if !req.uidMode { // RFC 7162 3.2.6
			return bad("", "VANISHED is only allowed with UID FETCH")
		}
		if !s.qresync {
			return bad("", "QRESYNC is not enabled")
		}
	}
	v := s.sel
	uids, err := v.resolve(req.set, req.uidMode)
	if err != nil {
		return err
	}
	if req.modseq || req.hasChanged { // RFC 7162 3.1: CONDSTORE-enabling
		s.enableCondstore()
	}
	f := &fetcher{s: s, v: v, req: req, st: s.srv.opts.Store, cache: s.srv.fetch}
	if req.vanished {
		if err := f.writeVanished(); err != nil {
			return err
		}
	}
	msgs, err := f.load(uids)
	if err != nil {
		return err
	}
	if req.hasChanged {
		msgs = slices.DeleteFunc(msgs, func(m fetchMsg) bool { return m.ModSeq <= req.changedSince })
	}
	seen, err := f.markSeen(msgs)
	if err != nil {
		return err
	}
	if err := f.writeAll(msgs, seen); err != nil {
		return err
	}
	switch {
	case f.cteErr != nil:
		return f.cteErr
	case f.gone && !req.uidMode:
		return no("EXPUNGEISSUED", "Some messages were expunged and could not be fetched")
	}
	return nil
}

// fetchMsg is one message to answer: its row from the store and its
// cached fixed data, if any.
type fetchMsg struct {
	store.Message
	ent *fetchEntry // nil: render from the structure
}

// load returns what FETCH needs of the messages uids (ascending):
// messages no longer in the store are left out (f.gone). Unless the
// items need the MIME tree itself, the fixed data comes from the fetch
// cache (fetch_load.go) and the rows are read without their structure.
func (f *fetcher) load(uids []uint32) ([]fetchMsg, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	if !f.req.row { // what is asked comes from the message bytes
		out := make([]fetchMsg, len(uids))
		for i, u := range uids {
			out[i].UID = u
		}
		return out, nil
	}
	if !f.req.tree {
		return f.loadCached(uids)
	}
	rows, err := f.loadRows(uids, f.req.structure)
	if err != nil {
		return nil, err
	}
	if len(rows) < len(uids) {
		f.gone = true
	}
	out := make([]fetchMsg, len(rows))
	for i := range rows {
		out[i].Message = rows[i]
	}
	return out, nil
}

// loadRows reads the message rows of uids (ascending) from the store;
// messages no longer there are left out.
func (f *fetcher) loadRows(uids []uint32, withStructure bool) ([]store.Message, error) {
	ctx, mbID := f.s.ctx, f.v.mb.ID
	first, _ := f.v.index(uids[0])
	if tail := f.v.count() - first; len(uids) <= pointReadMax || len(uids)*4 < tail {
		out := make([]store.Message, 0, len(uids))
		for _, u := range uids {
			m, err := f.st.Message(ctx, mbID, u)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	all, err := f.st.Messages(ctx, mbID, uids[0], withStructure)
	if errors.Is(err, store.ErrNotFound) { // the mailbox is gone: flush says BYE
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := all[:0]
	j := 0
	for _, m := range all {
		for j < len(uids) && uids[j] < m.UID {
			j++
		}
		if j == len(uids) {
			break
		}
		if uids[j] == m.UID {
			out = append(out, m)
		}
	}
	return out, nil
}

// markSeen sets \Seen on the messages a non-PEEK body item reads (in a
// read-write mailbox), updating msgs; it returns which messages changed.
func (f *fetcher) markSeen(msgs []fetchMsg) ([]bool, error) {
	if !f.req.seen || f.v.readOnly || len(msgs) == 0 {
		return nil, nil
	}
	var uids []uint32
	for _, m := range msgs {
		if !slices.Contains(m.Flags, store.FlagSeen) {
			uids = append(uids, m.UID)
		}
	}
	if len(uids) == 0 {
		return nil, nil
	}
	updated, _, err := f.st.StoreFlags(f.s.ctx, f.v.mb.ID, uids, store.FlagAdd, []string{store.FlagSeen}, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := make([]bool, len(msgs))
	i := 0
	for _, u := range updated {
		for i < len(msgs) && msgs[i].UID < u.UID {
			i++
		}
		if i < len(msgs) && msgs[i].UID == u.UID {
			msgs[i].Flags, msgs[i].ModSeq = u.Flags, u.ModSeq
			seen[i] = true
		}
	}
	return seen, nil
}

// writeVanished sends "* VANISHED (EARLIER) uids" for the UIDs of the
// set expunged since CHANGEDSINCE (RFC 7162 3.2.6). UIDs still in the
// view are left to the expunge report after the command.
func (f *fetcher) writeVanished() error {
	v := f.v
	gone, err := f.st.Vanished(f.s.ctx, v.mb.ID, f.req.changedSince)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	star := max(v.lastUID(), v.mb.UIDNext-1)
	var out []uint32
	for _, u := range gone {
		if _, inView := v.index(u); inView {
			continue
		}
		in := f.req.set.Contains(u, star)
		if f.req.set.Dollar {
			_, in = slices.BinarySearch(v.searchRes, u)
		}
		if in {
			out = append(out, u)
		}
	}
	if len(out) > 0 {
		f.s.w.Raw("* VANISHED (EARLIER) ").Raw(imap.FormatUIDs(out)).CRLF()
	}
	return nil
}

// writeAll writes one FETCH response per message, announcing new
// keywords first.
func (f *fetcher) writeAll(msgs []fetchMsg, seen []bool) error {
	v, s := f.v, f.s
	if f.req.flags || seen != nil {
		newKW := false
		for i := range msgs {
			if f.req.flags || seen[i] {
				newKW = v.newKeywords(msgs[i].Flags) || newKW
			}
		}
		if newKW {
			v.writeFlags(s)
		}
	}
	idx := 0 // cursor into v.msgs: msgs and v.msgs are both in UID order
	for i := range msgs {
		m := &msgs[i]
		for idx < len(v.msgs) && v.msgs[idx].uid < m.UID {
			idx++
		}
		if idx == len(v.msgs) || v.msgs[idx].uid != m.UID {
			continue // not in the view (cannot happen: uids came from it)
		}
		changed := seen != nil && seen[i]
		if err := f.writeMessage(uint32(idx+1), m, changed); err != nil {
			return err
		}
		if f.req.flags || changed {
			if vm := v.msgs[idx]; vm.modseq != m.ModSeq {
				v.noteFlags(m.UID, m.ModSeq, m.Flags)
			}
		}
		if err := s.w.Err(); err != nil { // the session ends after this command
			s.log.Info("fetch response broken off", "uid", m.UID, "err", err)
			return nil
		}
		if f.pending >= flushEvery {
			f.pending = 0
			if s.flush() != nil {
				return nil
			}
		}
	}
	return nil
}

// writeMessage writes "* seq FETCH (...)" for one message. A message
// gone from the store is skipped (f.gone), and so is one whose BINARY
// cannot be decoded (f.cteErr).
func (f *fetcher) writeMessage(seq uint32, m *fetchMsg, seenNow bool) error {
	var src msgSource
	src.size = m.Size
	var rd store.MessageReader
	if f.req.body {
		r, err := f.st.OpenMessage(f.s.ctx, f.v.mb.ID, m.UID)
		if errors.Is(err, store.ErrNotFound) {
			f.gone = true
			return nil
		}
		if err != nil {
			return err
		}
		defer r.Close()
		rd, src.r, src.size = r, r, r.Size()
		m.Size = src.size
	}
	if f.req.structure && (f.req.tree || m.ent == nil) {
		root, err := f.structure(&m.Message, rd)
		if err != nil {
			return err
		}
		src.root = root
	}
	if err := f.payloads(&src); err != nil {
		if errors.Is(err, errUnknownCTE) {
			f.cteErr = err
			return nil
		}
		return err
	}
	f.writeItems(seq, m, &src, seenNow)
	return nil
}

// structure returns the message's MIME tree. A missing or unreadable
// stored structure (never expected) is logged and rebuilt by parsing.
func (f *fetcher) structure(m *store.Message, r store.MessageReader) (*message.Part, error) {
	if m.Structure != nil {
		root, err := message.UnmarshalPart(m.Structure)
		if err == nil {
			return root, nil
		}
		f.s.log.Warn("stored message structure unreadable, parsing", "uid", m.UID, "err", err)
	}
	if r == nil {
		var err error
		if r, err = f.st.OpenMessage(f.s.ctx, f.v.mb.ID, m.UID); err != nil {
			return nil, err
		}
		defer r.Close()
	}
	return message.Parse(r, r.Size())
}

// payloads resolves the section items of one message into f.pl.
func (f *fetcher) payloads(src *msgSource) error {
	f.pl = f.pl[:0]
	if !f.req.body {
		return nil
	}
	for i := range f.req.items {
		it := &f.req.items[i]
		var p payload
		var err error
		switch it.kind {
		case fSection:
			p, err = src.sectionPayload(it)
		case fBinary, fBinarySize:
			p, err = src.binaryPayload(it)
		default:
			continue
		}
		if err != nil {
			return err
		}
		f.pl = append(f.pl, p)
	}
	return nil
}

// writeItems writes the response line of one message.
func (f *fetcher) writeItems(seq uint32, m *fetchMsg, src *msgSource, seenNow bool) {
	w := f.s.w
	w.Raw("* ").Number(uint64(seq)).Raw(" FETCH (")
	pi := 0
	for i := range f.req.items {
		it := &f.req.items[i]
		if i > 0 {
			w.SP()
		}
		switch it.kind {
		case fSection, fBinary:
			w.Raw(it.name).SP()
			f.pl[pi].writeBuf(w, &f.litBuf)
			f.pending += int(f.pl[pi].size)
			pi++
		case fBinarySize:
			w.Raw(it.name).SP().Number(uint64(f.pl[pi].size))
			pi++
		default:
			f.writeSimple(it.kind, m, src.root)
		}
	}
	if seenNow && !f.req.flags { // RFC 9051 6.4.5: the flags changed
		w.SP()
		f.writeSimple(fFlags, m, nil)
	}
	if seenNow && f.s.condstore && !f.req.modseq { // RFC 7162 3.1.4
		w.SP()
		f.writeSimple(fModSeq, m, nil)
	}
	w.Raw(")").CRLF()
	f.pending += 64
}

// writeSimple writes one item that is not a body section.
func (f *fetcher) writeSimple(k itemKind, m *fetchMsg, root *message.Part) {
	w := f.s.w
	switch k {
	case fFlags:
		w.Raw("FLAGS (")
		for j, fl := range m.Flags {
			if j > 0 {
				w.SP()
			}
			w.Raw(fl)
		}
		w.Raw(")")
	case fInternalDate:
		w.Raw(`INTERNALDATE "`).Raw(imap.FormatDateTime(m.InternalDate)).Raw(`"`)
	case fSize:
		w.Raw("RFC822.SIZE ").Number(uint64(m.Size))
	case fUID:
		w.Raw("UID ").Number(uint64(m.UID))
	case fModSeq:
		w.Raw("MODSEQ (").Number(m.ModSeq).Raw(")")
	case fEnvelope:
		if e := m.ent; e != nil && e.env != nil {
			f.cached("ENVELOPE ", e.env)
			return
		}
		f.raw(root.Env.AppendIMAP(append(f.scratch[:0], "ENVELOPE "...)))
	case fBody:
		if e := m.ent; e != nil && e.body != nil {
			f.cached("BODY ", e.body)
			return
		}
		f.raw(root.AppendBodyStructure(append(f.scratch[:0], "BODY "...), false))
	case fBodyStructure:
		if e := m.ent; e != nil && e.bs != nil {
			f.cached("BODYSTRUCTURE ", e.bs)
			return
		}
		f.raw(root.AppendBodyStructure(append(f.scratch[:0], "BODYSTRUCTURE "...), true))
	}
}

// cached writes name and a text from the fetch cache (immutable).
func (f *fetcher) cached(name string, b []byte) {
	f.s.w.Raw(name).Raw(unsafe.String(&b[0], len(b)))
	f.pending += len(name) + len(b)
}

// raw writes b (kept as the scratch buffer for the next item). The
// string shares b's memory: imap.Writer.Raw copies it into its buffer
// and keeps nothing, so no copy per message is made (an imap.Writer
// method taking []byte would make this unnecessary).
func (f *fetcher) raw(b []byte) {
	f.scratch = b
	if len(b) > 0 {
		f.s.w.Raw(unsafe.String(&b[0], len(b)))
	}
	f.pending += len(b)
}
