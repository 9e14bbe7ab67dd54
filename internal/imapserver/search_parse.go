package imapserver

import (
	"slices"
	"strconv"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// sop is the operation of one search key node.
type sop uint8

const (
	opAll        sop = iota // always true (ALL, OLD)
	opNone                  // never true (RECENT, NEW: \Recent is not kept)
	opAnd                   // every kid (a parenthesised list, the whole program)
	opOr                    // either kid
	opNot                   // not kids[0]
	opSet                   // UID in uids (sequence sets and UID sets, resolved)
	opFlag                  // has flag str (system flags and keywords, case-insensitive)
	opLarger                // RFC822.SIZE > n
	opSmaller               // RFC822.SIZE < n
	opBefore                // internal date's day < day
	opOn                    // internal date's day == day
	opSince                 // internal date's day >= day
	opSentBefore            // Date header's day < day
	opSentOn                // Date header's day == day
	opSentSince             // Date header's day >= day
	opModSeq                // MODSEQ >= n
	opSubject               // envelope Subject contains str
	opAddr                  // envelope address list addr contains str
	opHeader                // a header field named name contains str
	opText                  // full text (field) contains str
)

// Envelope address lists for opAddr.
const (
	addrFrom = iota
	addrTo
	addrCc
	addrBcc
	numAddrFields
)

// skey is one node of a parsed search program.
type skey struct {
	op   sop
	kids []*skey
	uids []uint32 // opSet, ascending
	str  string   // opFlag: the flag; string keys: the needle, folded (message.Fold)
	name string   // opHeader: the field name
	n    uint64   // sizes, MODSEQ
	day  int      // date keys: yyyymmdd
	addr int      // opAddr: addrFrom...
	text store.TextField
	neg  bool // opFlag: the flag must be absent (UNSEEN, UNKEYWORD, ...)

	// opText: the matching UIDs, read once per command.
	hits []uint32
	done bool
}

// Cost classes: an AND or OR evaluates its cheaper kids first, so the
// expensive ones only see the messages the cheap ones left.
const (
	costCheap    = iota // metadata: flags, size, dates, UID, MODSEQ
	costText            // a set lookup once the full-text search has run
	costEnvelope        // decoding the stored structure
	costHeader          // reading the header section
)

// searchParser turns search keys into a tree (RFC 9051 9 search-key).
type searchParser struct {
	v     *view
	conv  func([]byte) (string, error)
	keys  int
	texts int
	// What the evaluation needs.
	modseq   bool // a MODSEQ key: results carry MODSEQ (RFC 7162 3.1.5)
	meta     bool // size or internal date
	envelope bool // the stored structure (envelope keys, SENT*, HEADER)
}

// program parses the keys of a SEARCH: implicitly ANDed.
func (p *searchParser) program(args []imap.Value) (*skey, error) {
	return p.list(args, 0)
}

// list parses a sequence of keys into an AND node.
func (p *searchParser) list(args []imap.Value, depth int) (*skey, error) {
	if len(args) == 0 {
		return nil, bad("", "Empty search key list")
	}
	and := &skey{op: opAnd}
	for i := 0; i < len(args); {
		k, err := p.key(args, &i, depth)
		if err != nil {
			return nil, err
		}
		and.kids = append(and.kids, k)
	}
	if len(and.kids) == 1 {
		return and.kids[0], nil
	}
	slices.SortStableFunc(and.kids, func(a, b *skey) int { return a.cost() - b.cost() })
	return and, nil
}

// simpleKeys are the keys without arguments.
var simpleKeys = map[string]skey{
	"ALL": {op: opAll}, "OLD": {op: opAll}, "NEW": {op: opNone}, "RECENT": {op: opNone},
	"ANSWERED": {op: opFlag, str: store.FlagAnswered}, "UNANSWERED": {op: opFlag, str: store.FlagAnswered, neg: true},
	"DELETED": {op: opFlag, str: store.FlagDeleted}, "UNDELETED": {op: opFlag, str: store.FlagDeleted, neg: true},
	"DRAFT": {op: opFlag, str: store.FlagDraft}, "UNDRAFT": {op: opFlag, str: store.FlagDraft, neg: true},
	"FLAGGED": {op: opFlag, str: store.FlagFlagged}, "UNFLAGGED": {op: opFlag, str: store.FlagFlagged, neg: true},
	"SEEN": {op: opFlag, str: store.FlagSeen}, "UNSEEN": {op: opFlag, str: store.FlagSeen, neg: true},
}

// dateKeys take a date (RFC 9051 9 date).
var dateKeys = map[string]sop{
	"BEFORE": opBefore, "ON": opOn, "SINCE": opSince,
	"SENTBEFORE": opSentBefore, "SENTON": opSentOn, "SENTSINCE": opSentSince,
}

// stringKeys take a string matched against an envelope field.
var stringKeys = map[string]skey{
	"SUBJECT": {op: opSubject},
	"FROM":    {op: opAddr, addr: addrFrom}, "TO": {op: opAddr, addr: addrTo},
	"CC": {op: opAddr, addr: addrCc}, "BCC": {op: opAddr, addr: addrBcc},
	"BODY": {op: opText, text: store.TextBody}, "TEXT": {op: opText, text: store.TextAll},
}

// key parses the key at args[*i] and advances *i past it.
func (p *searchParser) key(args []imap.Value, i *int, depth int) (*skey, error) {
	if depth > maxSearchDepth {
		return nil, no("LIMIT", "Search keys nested too deeply")
	}
	if p.keys++; p.keys > maxSearchKeys {
		return nil, no("LIMIT", "Too many search keys")
	}
	a := args[*i]
	*i++
	switch a.Kind {
	case imap.KindList: // RFC 9051 9: "(" search-key *(SP search-key) ")"
		return p.list(a.List, depth+1)
	case imap.KindString:
		return nil, bad("", "Expected a search key")
	}
	if a.HasSection {
		return nil, bad("", "Unexpected [ in search key")
	}
	name := upper(a.Atom)
	if k, ok := simpleKeys[name]; ok {
		return &k, nil
	}
	if name == "" || name[0] == '$' || name[0] == '*' || name[0] >= '0' && name[0] <= '9' {
		return p.seqSet(a.Atom, false)
	}
	arg := func() (imap.Value, error) {
		if *i >= len(args) {
			return imap.Value{}, bad("", "Missing argument to "+name)
		}
		*i++
		return args[*i-1], nil
	}
	if op, ok := dateKeys[name]; ok {
		return p.dateKey(op, arg)
	}
	if k, ok := stringKeys[name]; ok {
		return p.stringKey(k, arg)
	}
	return p.otherKey(name, args, i, depth, arg)
}

// otherKey parses the keys with their own syntax.
func (p *searchParser) otherKey(name string, args []imap.Value, i *int, depth int, arg func() (imap.Value, error)) (*skey, error) {
	switch name {
	case "NOT":
		if *i >= len(args) {
			return nil, bad("", "Missing argument to NOT")
		}
		k, err := p.key(args, i, depth+1)
		if err != nil {
			return nil, err
		}
		return &skey{op: opNot, kids: []*skey{k}}, nil
	case "OR":
		if *i+1 >= len(args) {
			return nil, bad("", "OR needs two search keys")
		}
		a, err := p.key(args, i, depth+1)
		if err != nil {
			return nil, err
		}
		if *i >= len(args) {
			return nil, bad("", "OR needs two search keys")
		}
		b, err := p.key(args, i, depth+1)
		if err != nil {
			return nil, err
		}
		kids := []*skey{a, b}
		slices.SortStableFunc(kids, func(a, b *skey) int { return a.cost() - b.cost() })
		return &skey{op: opOr, kids: kids}, nil
	case "UID":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		if v.Kind != imap.KindAtom {
			return nil, bad("", "UID needs a sequence set")
		}
		return p.seqSet(v.Atom, true)
	case "KEYWORD", "UNKEYWORD":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		if v.Kind != imap.KindAtom || v.Atom == "" {
			return nil, bad("", name+" needs a flag keyword")
		}
		return &skey{op: opFlag, str: v.Atom, neg: name == "UNKEYWORD"}, nil
	case "LARGER", "SMALLER":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		n, err := numberArg(v, 63) // RFC 9051 9: number64
		if err != nil {
			return nil, err
		}
		p.meta = true
		op := opLarger
		if name == "SMALLER" {
			op = opSmaller
		}
		return &skey{op: op, n: n}, nil
	case "HEADER":
		return p.headerKey(arg)
	case "MODSEQ":
		return p.modseqKey(args, i)
	}
	return nil, bad("", "Unknown search key "+name)
}

// seqSet parses a sequence set (sequence numbers, or UIDs for the UID
// key) and resolves it to UIDs of the view.
func (p *searchParser) seqSet(s string, uid bool) (*skey, error) {
	set, err := imap.ParseSeqSet(s)
	if err != nil {
		return nil, bad("", "Invalid sequence set "+strconv.Quote(s))
	}
	uids, err := p.v.resolve(set, uid)
	if err != nil {
		return nil, err
	}
	return &skey{op: opSet, uids: uids}, nil
}

// dateKey parses the date of BEFORE, ON, SINCE and their SENT forms
// (RFC 9051 9: date = date-text / DQUOTE date-text DQUOTE).
func (p *searchParser) dateKey(op sop, arg func() (imap.Value, error)) (*skey, error) {
	v, err := arg()
	if err != nil {
		return nil, err
	}
	s, err := astring(v)
	if err != nil {
		return nil, err
	}
	t, err := imap.ParseDate(s)
	if err != nil {
		return nil, bad("", "Invalid date "+strconv.Quote(s))
	}
	if op == opSentBefore || op == opSentOn || op == opSentSince {
		p.envelope = true
	} else {
		p.meta = true
	}
	y, m, d := t.Date()
	return &skey{op: op, day: y*10000 + int(m)*100 + d}, nil
}

// needle reads a search string and converts it to UTF-8.
func (p *searchParser) needle(v imap.Value) (string, error) {
	if v.Kind == imap.KindList {
		return "", bad("", "Expected a string")
	}
	if v.Kind == imap.KindString && v.File != nil {
		return "", bad("TOOBIG", "Search string too long")
	}
	b := v.Str
	if v.Kind == imap.KindAtom {
		b = []byte(v.Atom)
	}
	return p.conv(b)
}

// stringKey parses SUBJECT, FROM, TO, CC, BCC, BODY and TEXT.
func (p *searchParser) stringKey(k skey, arg func() (imap.Value, error)) (*skey, error) {
	v, err := arg()
	if err != nil {
		return nil, err
	}
	s, err := p.needle(v)
	if err != nil {
		return nil, err
	}
	if k.op == opText {
		if p.texts++; p.texts > maxSearchTextKeys {
			return nil, no("LIMIT", "Too many BODY and TEXT keys")
		}
		k.str = s // SearchText folds it itself
		return &k, nil
	}
	p.envelope = true
	k.str = message.Fold(s)
	return &k, nil
}

// headerKey parses HEADER field-name string.
func (p *searchParser) headerKey(arg func() (imap.Value, error)) (*skey, error) {
	nv, err := arg()
	if err != nil {
		return nil, err
	}
	name, err := astring(nv)
	if err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
		return nil, bad("", "Invalid header field name")
	}
	v, err := arg()
	if err != nil {
		return nil, err
	}
	s, err := p.needle(v)
	if err != nil {
		return nil, err
	}
	p.envelope = true // the structure says where the header ends
	return &skey{op: opHeader, name: strings.ToLower(name), str: message.Fold(s)}, nil
}

// modseqKey parses MODSEQ [entry-name entry-type-req] mod-sequence-valzer
// (RFC 7162 3.1.5). Flags have no MODSEQ of their own here, so the
// entry is checked and then ignored: the message's MODSEQ counts.
func (p *searchParser) modseqKey(args []imap.Value, i *int) (*skey, error) {
	if *i < len(args) && args[*i].Kind == imap.KindString {
		if *i+1 >= len(args) {
			return nil, bad("", "MODSEQ needs an entry type and a value")
		}
		entry := strings.ToLower(args[*i].String())
		typ := args[*i+1]
		if !strings.HasPrefix(entry, "/flags/") || typ.Kind != imap.KindAtom ||
			!slices.Contains([]string{"priv", "shared", "all"}, strings.ToLower(typ.Atom)) {
			return nil, bad("", "Invalid MODSEQ entry")
		}
		*i += 2
	}
	if *i >= len(args) {
		return nil, bad("", "Missing argument to MODSEQ")
	}
	n, err := numberArg(args[*i], 63) // mod-sequence-valzer
	if err != nil {
		return nil, err
	}
	*i++
	p.modseq = true
	return &skey{op: opModSeq, n: n}, nil
}

// cost is the most expensive cost class in k.
func (k *skey) cost() int {
	switch k.op {
	case opAnd, opOr, opNot:
		c := costCheap
		for _, kid := range k.kids {
			c = max(c, kid.cost())
		}
		return c
	case opText:
		return costText
	case opSubject, opAddr, opSentBefore, opSentOn, opSentSince:
		return costEnvelope
	case opHeader:
		return costHeader
	}
	return costCheap
}
