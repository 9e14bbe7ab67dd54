package imapserver

import (
	"errors"
	"io"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// Evaluation of a parsed search program over the selected mailbox.
//
// The messages are those the client knows (the view, after folding in
// what the change feed brought), with their flags and MODSEQ from the
// view. Sizes, dates and envelope fields come from the Server's
// searchCache, and what it lacks from one store.Messages call (with the
// stored MIME structure when an envelope or header key needs it). Each
// AND and OR looks at its kids cheapest first (skey.cost), so header
// reads and full-text searches only happen for messages the cheap keys
// left; a BODY/TEXT key runs one store.SearchText over the mailbox the
// first time a message reaches it.
//
// Matching (RFC 9051 6.4.4): strings are case-insensitive substrings
// (message.Fold, Unicode simple folding). SUBJECT and the address keys
// look at the ENVELOPE computed at delivery: the Subject RFC 2047
// decoded; FROM, TO, CC and BCC the address list written out as
// `Name <local@domain>, ...` with the names decoded (as Dovecot does).
// HEADER reads the header section (per-recipient lines included) and
// matches the decoded value of every field of that name; an empty
// string matches any message that has the field. An empty string for
// SUBJECT and the address keys likewise matches a message whose field is
// present. BEFORE, ON and SINCE compare the day of the internal date in
// its own zone; the SENT keys the day of the Date header as written
// (time and zone ignored), and the internal date's when the Date header
// is missing or unreadable (as RFC 5256 2.2 does for sorting).
// Messages expunged elsewhere whose expunge the client was not told yet
// never match.

// maxSearchHeader bounds the bytes of one header section read for HEADER.
const maxSearchHeader = 256 << 10

// fewMissing: up to this many messages missing from the cache are read
// one by one rather than by listing the mailbox.
const fewMissing = 32

// searchEval is the state of one evaluation.
type searchEval struct {
	s     *session
	st    store.Store
	cache *searchCache
	mbID  int64
	text  map[string][]uint32 // full-text results by field and needle
}

// searchMsg is one message under evaluation.
type searchMsg struct {
	seq, uid uint32
	flags    []string // from the view (shared: read only)
	modseq   uint64
	f        *searchFields // nil unless size, dates or envelope are needed
	hdr      []searchField // the header section, once read for HEADER
	hdrRead  bool
}

// searchField is one header field: lower-case name, folded decoded value.
type searchField struct{ name, value string }

// evalSearch returns the messages of the view that match root, in
// sequence order.
func (s *session) evalSearch(root *skey, p *searchParser, cache *searchCache) ([]searchHit, error) {
	v := s.sel
	v.poll() // the flags as the store has them now; flush reports them after
	if err := v.sync(s.ctx); err != nil {
		return nil, err
	}
	e := &searchEval{s: s, st: s.srv.opts.Store, cache: cache, mbID: v.mb.ID, text: map[string][]uint32{}}
	ms := make([]searchMsg, 0, len(v.msgs))
	for i, vm := range v.msgs {
		if !v.isExpunged(vm.uid) {
			ms = append(ms, searchMsg{seq: uint32(i + 1), uid: vm.uid, flags: v.flagsOf(vm), modseq: vm.modseq})
		}
	}
	needFields := p.meta || p.envelope
	if needFields {
		if err := e.loadFields(ms, p.envelope); err != nil {
			return nil, err
		}
	}
	var hits []searchHit
	for i := range ms {
		m := &ms[i]
		if needFields && m.f == nil {
			continue // gone from the store meanwhile
		}
		if i%1024 == 1023 {
			if err := s.ctx.Err(); err != nil {
				return nil, err
			}
		}
		ok, err := e.match(root, m)
		if err != nil {
			return nil, err
		}
		if ok {
			hits = append(hits, searchHit{seq: m.seq, uid: m.uid, modseq: m.modseq})
		}
	}
	return hits, nil
}

// loadFields sets ms[i].f from the cache, reading what it lacks from the
// store (and caching it).
func (e *searchEval) loadFields(ms []searchMsg, env bool) error {
	uids := make([]uint32, len(ms))
	fs := make([]*searchFields, len(ms))
	for i := range ms {
		uids[i] = ms[i].uid
	}
	e.cache.get(e.mbID, uids, fs, env)
	missing := map[uint32]int{}
	for i, f := range fs {
		ms[i].f = f
		if f == nil {
			missing[ms[i].uid] = i
		}
	}
	if len(missing) == 0 {
		return nil
	}
	msgs, err := e.missingMessages(uids, fs, len(missing), env)
	if err != nil {
		return err
	}
	add := make(map[uint32]*searchFields, len(missing))
	for j := range msgs {
		if i, ok := missing[msgs[j].UID]; ok {
			f := e.fields(&msgs[j], env)
			ms[i].f, add[msgs[j].UID] = f, f
		}
	}
	e.cache.put(e.mbID, add)
	return nil
}

// missingMessages reads the messages whose fields are not cached: one
// by one when there are few, else the mailbox from the first of them on.
func (e *searchEval) missingMessages(uids []uint32, fs []*searchFields, n int, env bool) ([]store.Message, error) {
	var out []store.Message
	if n <= fewMissing {
		for i, f := range fs {
			if f != nil {
				continue
			}
			m, err := e.st.Message(e.s.ctx, e.mbID, uids[i])
			if errors.Is(err, store.ErrNotFound) {
				continue // expunged meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	first := uint32(0)
	for i, f := range fs {
		if f == nil {
			first = uids[i]
			break
		}
	}
	out, err := e.st.Messages(e.s.ctx, e.mbID, first, env)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // deleted meanwhile: the flush after the command says BYE
	}
	return out, err
}

// fields computes the search fields of a message.
func (e *searchEval) fields(m *store.Message, env bool) *searchFields {
	f := &searchFields{size: m.Size, day: int32(dayOf(m.InternalDate))}
	if !env {
		return f
	}
	f.hasEnv, f.sentDay = true, f.day
	if len(m.Structure) == 0 {
		return f
	}
	p, err := message.UnmarshalPart(m.Structure)
	if err != nil || p.Env == nil {
		e.s.log.Warn("search: bad stored structure", "mailbox", e.mbID, "uid", m.UID, "err", err)
		return f
	}
	f.bodyAt = p.BodyStart
	if d := sentDay(p.Env.Date); d != 0 {
		f.sentDay = int32(d)
	}
	f.subject = message.Fold(decodeWords(p.Env.Subject))
	for k, list := range [numAddrFields][]message.Address{p.Env.From, p.Env.To, p.Env.Cc, p.Env.Bcc} {
		f.addrs[k] = message.Fold(formatAddresses(list))
	}
	return f
}

// match evaluates k for one message.
func (e *searchEval) match(k *skey, m *searchMsg) (bool, error) {
	switch k.op {
	case opAll:
		return true, nil
	case opNone:
		return false, nil
	case opAnd:
		for _, kid := range k.kids {
			if ok, err := e.match(kid, m); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case opOr:
		for _, kid := range k.kids {
			if ok, err := e.match(kid, m); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case opNot:
		ok, err := e.match(k.kids[0], m)
		return !ok && err == nil, err
	case opText:
		return e.matchText(k, m.uid)
	case opHeader:
		return e.matchHeader(k, m)
	}
	return matchMeta(k, m), nil
}

// matchMeta evaluates the keys that need no I/O.
func matchMeta(k *skey, m *searchMsg) bool {
	switch k.op {
	case opSet:
		_, ok := slices.BinarySearch(k.uids, m.uid)
		return ok
	case opFlag:
		has := slices.ContainsFunc(m.flags, func(f string) bool { return strings.EqualFold(f, k.str) })
		return has != k.neg
	case opModSeq:
		return m.modseq >= k.n
	case opLarger:
		return uint64(m.f.size) > k.n
	case opSmaller:
		return uint64(m.f.size) < k.n
	case opBefore, opOn, opSince:
		return compareDay(k.op, int(m.f.day), k.day)
	case opSentBefore, opSentOn, opSentSince:
		return compareDay(k.op, int(m.f.sentDay), k.day)
	case opSubject:
		return containsField(m.f.subject, k.str)
	case opAddr:
		return containsField(m.f.addrs[k.addr], k.str)
	}
	return false
}

// sentDay returns the day of a Date header value as written (time and
// zone ignored, RFC 9051 6.4.4 SENTON) as yyyymmdd, or 0 if it has none.
// The common form "[Day,] D Mon YYYY ..." (RFC 5322 3.3, with 2- and
// 3-digit years per 4.3) is read directly; others go through
// net/mail.ParseDate.
func sentDay(s string) int {
	rest := strings.TrimSpace(s)
	if i := strings.IndexByte(rest, ','); i >= 0 && i < 16 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) >= 3 {
		d, err1 := strconv.Atoi(f[0])
		y, err2 := strconv.Atoi(f[2])
		m := monthIndex(f[1])
		switch {
		case err2 != nil || len(f[2]) > 4:
		case len(f[2]) == 2 && y < 50:
			y += 2000
		case len(f[2]) <= 3:
			y += 1900
		}
		if err1 == nil && err2 == nil && m > 0 && d >= 1 && d <= 31 && len(f[2]) <= 4 {
			return y*10000 + m*100 + d
		}
	}
	if t, err := mail.ParseDate(s); err == nil {
		return dayOf(t)
	}
	return 0
}

// monthIndex returns 1-12 for an English month abbreviation, else 0.
func monthIndex(s string) int {
	const names = "janfebmaraprmayjunjulaugsepoctnovdec"
	if len(s) != 3 {
		return 0
	}
	i := strings.Index(names, strings.ToLower(s))
	if i < 0 || i%3 != 0 {
		return 0
	}
	return i/3 + 1
}

// containsField: an empty needle matches a present (non-empty) field.
func containsField(field, needle string) bool {
	if needle == "" {
		return field != ""
	}
	return strings.Contains(field, needle)
}

// dayOf is t's calendar day in its own zone as yyyymmdd.
func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

func compareDay(op sop, day, want int) bool {
	switch op {
	case opBefore, opSentBefore:
		return day < want
	case opOn, opSentOn:
		return day == want
	}
	return day >= want
}

// decodeWords decodes RFC 2047 encoded words of a raw header value
// (8-bit bytes outside UTF-8 read as Latin-1).
func decodeWords(s string) string { return message.DecodeHeader(message.LenientUTF8(s)) }

// formatAddresses writes an address list as `Name <local@domain>, ...`
// (groups as `Group: ...;`), names decoded, placeholders for missing
// parts left out.
func formatAddresses(list []message.Address) string {
	var b strings.Builder
	sep := ""
	for _, a := range list {
		switch {
		case a.IsGroupEnd():
			b.WriteString(";")
			sep = ", "
			continue
		case a.IsGroupStart():
			b.WriteString(sep + decodeWords(a.Mailbox) + ": ")
			sep = ""
			continue
		}
		b.WriteString(sep)
		sep = ", "
		if a.Name != "" {
			b.WriteString(decodeWords(a.Name) + " <")
		}
		if a.Mailbox != message.MissingMailbox {
			b.WriteString(message.LenientUTF8(a.Mailbox))
		}
		if a.Host != message.MissingDomain {
			b.WriteString("@" + a.Host)
		}
		if a.Name != "" {
			b.WriteString(">")
		}
	}
	return b.String()
}

// matchText looks uid up in the result of the key's full-text search,
// which runs the first time it is needed (once per field and needle).
func (e *searchEval) matchText(k *skey, uid uint32) (bool, error) {
	if !k.done {
		ck := string(rune('0'+k.text)) + k.str
		uids, ok := e.text[ck]
		if !ok {
			var err error
			uids, err = e.st.SearchText(e.s.ctx, e.mbID, k.text, k.str)
			if errors.Is(err, store.ErrNotFound) {
				err = nil // mailbox deleted meanwhile
			}
			if err != nil {
				return false, err
			}
			e.text[ck] = uids
		}
		k.hits, k.done = uids, true
	}
	_, ok := slices.BinarySearch(k.hits, uid)
	return ok, nil
}

// matchHeader evaluates HEADER name string, from the cache or the
// message's header section.
func (e *searchEval) matchHeader(k *skey, m *searchMsg) (bool, error) {
	vals, ok := e.cache.header(e.mbID, k.name, m.uid)
	if !ok {
		if err := e.readHeader(m); err != nil {
			return false, err
		}
		vals = nil
		for _, f := range m.hdr {
			if f.name == k.name {
				vals = append(vals, f.value)
			}
		}
		if m.hdrRead {
			e.cache.putHeader(e.mbID, k.name, m.uid, vals)
		}
	}
	for _, v := range vals {
		if strings.Contains(v, k.str) {
			return true, nil
		}
	}
	return false, nil
}

// readHeader reads and decodes the header section of m once; hdrRead
// tells whether it was there (a message expunged meanwhile has none).
func (e *searchEval) readHeader(m *searchMsg) error {
	if m.hdr != nil || m.hdrRead {
		return nil
	}
	n := int64(maxSearchHeader)
	if m.f != nil && m.f.bodyAt > 0 {
		n = min(m.f.bodyAt, n)
	}
	r, err := e.st.OpenMessage(e.s.ctx, e.mbID, m.uid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, min(n, r.Size()))
	got, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	m.hdrRead = true
	text := message.Fold(message.HeaderText(buf[:got]))
	for line := range strings.SplitSeq(text, "\n") {
		if name, value, ok := strings.Cut(line, ": "); ok {
			m.hdr = append(m.hdr, searchField{name: name, value: value})
		}
	}
	return nil
}
