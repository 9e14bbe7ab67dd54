package imapserver

import (
	"strconv"
	"strings"

	"pillarbox/internal/imap"
)

// itemKind is one FETCH data item (RFC 9051 6.4.5).
type itemKind uint8

const (
	fFlags itemKind = iota + 1
	fInternalDate
	fSize          // RFC822.SIZE
	fEnvelope      // ENVELOPE
	fBody          // BODY: BODYSTRUCTURE without extension data
	fBodyStructure // BODYSTRUCTURE
	fUID
	fModSeq     // RFC 7162 3.1.4
	fSection    // BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER, RFC822.TEXT
	fBinary     // BINARY[...], BINARY.PEEK[...] (RFC 3516)
	fBinarySize // BINARY.SIZE[...]
)

// Section specifiers (RFC 9051 6.4.5 section-msgtext / section-text).
const (
	specNone      = ""
	specHeader    = "HEADER"
	specFields    = "HEADER.FIELDS"
	specFieldsNot = "HEADER.FIELDS.NOT"
	specText      = "TEXT"
	specMIME      = "MIME"
)

// section is the part of a message a BODY[...] or BINARY[...] item names.
type section struct {
	part   []int    // part numbers, e.g. 1.2 -> [1 2]; empty: the message
	spec   string   // one of the spec* constants
	fields []string // HEADER.FIELDS (.NOT) names as sent
}

// fetchItem is one requested data item.
type fetchItem struct {
	kind    itemKind
	name    string // the response's item name, e.g. "BODY[1.MIME]", "RFC822.TEXT"
	sec     section
	seen    bool // fetching it sets \Seen (BODY[...], RFC822, RFC822.TEXT, BINARY[...])
	partial bool // <origin.count>
	origin  int64
	count   int64
}

// fetchReq is a parsed FETCH / UID FETCH command.
type fetchReq struct {
	set          imap.SeqSet
	items        []fetchItem
	uidMode      bool
	changedSince uint64 // RFC 7162 3.1.4 CHANGEDSINCE; valid when hasChanged
	hasChanged   bool
	vanished     bool // RFC 7162 3.2.6 VANISHED

	// What the items need.
	structure bool // the MIME structure (Message.Structure)
	tree      bool // sections need the MIME tree itself (not only rendered texts)
	env       bool // ENVELOPE is requested
	bodyText  bool // BODY (non-extensible) is requested
	bs        bool // BODYSTRUCTURE is requested
	body      bool // the message bytes (store.OpenMessage)
	seen      bool // some item sets \Seen
	flags     bool // FLAGS is requested
	modseq    bool // MODSEQ is requested or implied
	uid       bool // UID is requested or implied
	row       bool // the message rows are needed (else only the bytes)
}

// Macros (RFC 9051 6.4.5).
var fetchMacros = map[string][]string{
	"ALL":  {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	"FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"},
	"FULL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"},
}

// simpleItems are the items named by a plain atom.
var simpleItems = map[string]itemKind{
	"FLAGS": fFlags, "INTERNALDATE": fInternalDate, "RFC822.SIZE": fSize,
	"ENVELOPE": fEnvelope, "BODY": fBody, "BODYSTRUCTURE": fBodyStructure,
	"UID": fUID, "MODSEQ": fModSeq,
}

// parseFetch parses "sequence-set items [(modifiers)]".
func parseFetch(c *imap.Command) (*fetchReq, error) {
	if err := wantArgs(c, 2, 3); err != nil {
		return nil, err
	}
	req := &fetchReq{uidMode: c.Name == "UID FETCH"}
	a := c.Args[0]
	if a.Kind != imap.KindAtom || a.HasSection {
		return nil, bad("", "Invalid sequence set")
	}
	set, err := imap.ParseSeqSet(a.Atom)
	if err != nil {
		return nil, bad("", "Invalid sequence set")
	}
	req.set = set
	if err := req.parseItems(c.Args[1]); err != nil {
		return nil, err
	}
	if len(c.Args) == 3 {
		if err := req.parseModifiers(c.Args[2]); err != nil {
			return nil, err
		}
	}
	if req.hasChanged && !req.modseq { // RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ
		req.add(fetchItem{kind: fModSeq, name: "MODSEQ"})
	}
	// Rows (flags, dates, structure) are read unless only UID, sizes and
	// sections without part numbers are asked for: those come from the
	// message bytes alone.
	req.row = req.row || !req.body || req.structure || req.flags || req.modseq || req.seen || req.hasChanged
	if req.uidMode && !req.uid { // RFC 9051 6.4.9: UID FETCH always returns UID
		req.items = append([]fetchItem{{kind: fUID, name: "UID"}}, req.items...)
		req.uid = true
	}
	return req, nil
}

// parseItems parses a macro, a single item or a parenthesized list.
func (req *fetchReq) parseItems(v imap.Value) error {
	if v.Kind == imap.KindAtom && !v.HasSection {
		if m, ok := fetchMacros[upper(v.Atom)]; ok {
			for _, name := range m {
				if err := req.parseItem(imap.Value{Kind: imap.KindAtom, Atom: name}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if v.Kind != imap.KindList {
		return req.parseItem(v)
	}
	if len(v.List) == 0 {
		return bad("", "No fetch data items")
	}
	for _, it := range v.List {
		if err := req.parseItem(it); err != nil {
			return err
		}
	}
	return nil
}

// parseItem parses one data item.
func (req *fetchReq) parseItem(v imap.Value) error {
	if v.Kind != imap.KindAtom {
		return bad("", "Invalid fetch data item")
	}
	name := upper(v.Atom)
	if !v.HasSection {
		switch name {
		case "RFC822":
			req.add(fetchItem{kind: fSection, name: name, seen: true})
		case "RFC822.HEADER": // = BODY.PEEK[HEADER]
			req.add(fetchItem{kind: fSection, name: name, sec: section{spec: specHeader}})
		case "RFC822.TEXT":
			req.add(fetchItem{kind: fSection, name: name, sec: section{spec: specText}, seen: true})
		default:
			k, ok := simpleItems[name]
			if !ok {
				return bad("", "Unknown fetch data item "+name)
			}
			req.add(fetchItem{kind: k, name: name})
		}
		return nil
	}
	var it fetchItem
	var err error
	switch name {
	case "BODY", "BODY.PEEK":
		it.kind, it.seen = fSection, name == "BODY"
		it.sec, err = parseSection(v.Section, false)
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		it.kind, it.seen = fBinary, name == "BINARY"
		if name == "BINARY.SIZE" {
			it.kind = fBinarySize
		}
		it.sec, err = parseSection(v.Section, true)
	default:
		return bad("", "Unknown fetch data item "+name)
	}
	if err != nil {
		return err
	}
	if v.Partial != "" {
		if it.kind == fBinarySize {
			return bad("", "BINARY.SIZE takes no partial")
		}
		if it.origin, it.count, err = parsePartial(v.Partial); err != nil {
			return err
		}
		it.partial = true
	}
	it.name = it.responseName()
	req.add(it)
	return nil
}

// add appends an item unless the same one is there already, and notes
// what it needs.
func (req *fetchReq) add(it fetchItem) {
	req.seen = req.seen || it.seen
	for i := range req.items {
		if o := &req.items[i]; o.name == it.name && o.partial == it.partial && o.origin == it.origin && o.count == it.count {
			o.seen = o.seen || it.seen // BODY.PEEK[] and BODY[]: one answer, \Seen set
			return
		}
	}
	req.items = append(req.items, it)
	switch it.kind {
	case fFlags:
		req.flags = true
	case fModSeq:
		req.modseq = true
	case fUID:
		req.uid = true
	case fInternalDate:
		req.row = true
	case fEnvelope, fBody, fBodyStructure:
		req.structure = true
		req.env = req.env || it.kind == fEnvelope
		req.bodyText = req.bodyText || it.kind == fBody
		req.bs = req.bs || it.kind == fBodyStructure
	case fSection, fBinary, fBinarySize:
		req.body = true
		if len(it.sec.part) > 0 || it.sec.spec != specNone {
			req.structure, req.tree = true, true
		}
	}
}

// parseSection parses what is inside [...]: part numbers, then (BODY
// only) HEADER, HEADER.FIELDS (list), HEADER.FIELDS.NOT (list), TEXT or
// MIME (RFC 9051 6.4.5; RFC 3516 section-binary: part numbers only).
func parseSection(vals []imap.Value, binary bool) (section, error) {
	var sec section
	if len(vals) == 0 {
		return sec, nil
	}
	errSec := bad("", "Invalid section")
	if vals[0].Kind != imap.KindAtom || vals[0].HasSection {
		return sec, errSec
	}
	comps := strings.Split(vals[0].Atom, ".")
	i := 0
	for ; i < len(comps) && comps[i] != "" && comps[i][0] >= '0' && comps[i][0] <= '9'; i++ {
		n, err := strconv.ParseUint(comps[i], 10, 31)
		if err != nil || n == 0 || len(sec.part) >= 100 {
			return sec, errSec
		}
		sec.part = append(sec.part, int(n))
	}
	rest := strings.Join(comps[i:], ".")
	if strings.HasSuffix(vals[0].Atom, ".") {
		return sec, errSec
	}
	sec.spec = upper(rest)
	switch sec.spec {
	case specNone, specHeader, specText, specFields, specFieldsNot, specMIME:
	default:
		return sec, errSec
	}
	if binary && sec.spec != specNone {
		return sec, errSec
	}
	if sec.spec == specMIME && len(sec.part) == 0 { // RFC 9051 6.4.5: MIME needs a part
		return sec, errSec
	}
	if sec.spec != specFields && sec.spec != specFieldsNot {
		if len(vals) != 1 {
			return sec, errSec
		}
		return sec, nil
	}
	if len(vals) != 2 || vals[1].Kind != imap.KindList || len(vals[1].List) == 0 {
		return sec, bad("", "HEADER.FIELDS needs a list of field names")
	}
	for _, f := range vals[1].List {
		name, err := astring(f)
		if err != nil || !validFieldName(name) {
			return sec, bad("", "Invalid header field name")
		}
		sec.fields = append(sec.fields, name)
	}
	return sec, nil
}

// parsePartial parses "origin.count" (count > 0).
func parsePartial(p string) (int64, int64, error) {
	o, c, ok := strings.Cut(p, ".")
	origin, err1 := strconv.ParseUint(o, 10, 32)
	count, err2 := strconv.ParseUint(c, 10, 32)
	if !ok || err1 != nil || err2 != nil || count == 0 {
		return 0, 0, bad("", "Invalid partial <origin.count>")
	}
	return int64(origin), int64(count), nil
}

// responseName is the item's name in the response: the section as
// asked, "<origin>" for a partial BODY (RFC 9051 7.5.2; BINARY answers
// without origin, per the ABNF msg-att-static and RFC 3516).
func (it *fetchItem) responseName() string {
	var b strings.Builder
	switch it.kind {
	case fSection:
		b.WriteString("BODY[")
	case fBinary:
		b.WriteString("BINARY[")
	case fBinarySize:
		b.WriteString("BINARY.SIZE[")
	}
	for i, n := range it.sec.part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if it.sec.spec != specNone {
		if len(it.sec.part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(it.sec.spec)
	}
	if len(it.sec.fields) > 0 {
		b.WriteString(" (")
		for i, f := range it.sec.fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(quoteField(f))
		}
		b.WriteByte(')')
	}
	b.WriteByte(']')
	if it.partial && it.kind == fSection {
		b.WriteByte('<')
		b.WriteString(strconv.FormatInt(it.origin, 10))
		b.WriteByte('>')
	}
	return b.String()
}

// validFieldName: RFC 5322 2.2 field-name, printable US-ASCII except ':'.
func validFieldName(f string) bool {
	if f == "" || len(f) > 200 {
		return false
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// quoteField writes a valid header field name as an astring.
func quoteField(f string) string {
	if imap.IsAtom(f) {
		return f
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(f) + `"`
}

// parseModifiers parses "(CHANGEDSINCE n [VANISHED])" (RFC 7162 3.1.4,
// 3.2.6).
func (req *fetchReq) parseModifiers(v imap.Value) error {
	items, err := listArg(v)
	if err != nil {
		return err
	}
	for i := 0; i < len(items); i++ {
		name, err := atomArg(items[i])
		if err != nil {
			return err
		}
		switch name {
		case "CHANGEDSINCE":
			if i+1 >= len(items) || req.hasChanged {
				return bad("", "CHANGEDSINCE takes one mod-sequence")
			}
			i++
			if req.changedSince, err = numberArg(items[i], 63); err != nil {
				return err
			}
			req.hasChanged = true
		case "VANISHED":
			req.vanished = true
		default:
			return bad("", "Unknown FETCH modifier "+name)
		}
	}
	if req.vanished && !req.hasChanged { // RFC 7162 3.2.6
		return bad("", "VANISHED needs CHANGEDSINCE")
	}
	return nil
}
