package imapserver

import (
	"regexp"
	"sort"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// listRequest is a parsed LIST (RFC 9051 6.3.9, RFC 5258 LIST-EXTENDED,
// RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS) or LSUB (RFC 3501 6.3.9).
type listRequest struct {
	ref      string
	patterns []string
	extended bool // any LIST-EXTENDED syntax was used

	selSubscribed, selSpecialUse, recursive bool
	retSubscribed                           bool
	retStatus                               []string // STATUS items, nil if not asked
	lsub                                    bool
}

// maxPatternBytes bounds a LIST pattern (mailbox names are at most 255).
const maxPatternBytes = 1024

// cmdList: LIST.
func cmdList(s *session, c *imap.Command) error {
	req, err := s.parseList(c.Args)
	if err != nil {
		return err
	}
	return s.list(req)
}

// cmdLsub: LSUB (IMAP4rev1 only; dispatch refuses it after ENABLE IMAP4rev2).
func cmdLsub(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	req := &listRequest{lsub: true, selSubscribed: true}
	if err := s.parseRefPattern(req, c.Args[0], c.Args[1]); err != nil {
		return err
	}
	return s.list(req)
}

// parseList parses: [(selection)] reference patterns [RETURN (options)].
func (s *session) parseList(args []imap.Value) (*listRequest, error) {
	req := &listRequest{}
	if len(args) > 0 && args[0].Kind == imap.KindList {
		req.extended = true
		if err := req.parseSelection(args[0].List); err != nil {
			return nil, err
		}
		args = args[1:]
	}
	if len(args) != 2 && len(args) != 4 {
		return nil, bad("", "LIST takes [(selection)] reference mailbox [RETURN (options)]")
	}
	if len(args) == 4 {
		if a, err := atomArg(args[2]); err != nil || a != "RETURN" {
			return nil, bad("", "Expected RETURN")
		}
		req.extended = true
		if err := req.parseReturn(args[3]); err != nil {
			return nil, err
		}
	}
	if err := s.parseRefPattern(req, args[0], args[1]); err != nil {
		return nil, err
	}
	return req, nil
}

func (req *listRequest) parseSelection(items []imap.Value) error {
	other := false
	for _, it := range items {
		a, err := atomArg(it)
		if err != nil {
			return err
		}
		switch a {
		case "SUBSCRIBED":
			req.selSubscribed, req.retSubscribed, other = true, true, true
		case "SPECIAL-USE":
			req.selSpecialUse, other = true, true
		case "REMOTE": // no remote mailboxes here
		case "RECURSIVEMATCH":
			req.recursive = true
		default:
			return bad("", "Unknown LIST selection option "+a)
		}
	}
	if req.recursive && !other { // RFC 5258 3.1
		return bad("", "RECURSIVEMATCH needs another selection option")
	}
	return nil
}

func (req *listRequest) parseReturn(v imap.Value) error {
	items, err := listArg(v)
	if err != nil {
		return err
	}
	for i := 0; i < len(items); i++ {
		a, err := atomArg(items[i])
		if err != nil {
			return err
		}
		switch a {
		case "SUBSCRIBED":
			req.retSubscribed = true
		case "CHILDREN", "SPECIAL-USE": // always returned
		case "STATUS": // RFC 5819
			if i+1 >= len(items) {
				return bad("", "RETURN STATUS needs data items")
			}
			i++
			if req.retStatus, err = parseStatusItems(items[i]); err != nil {
				return err
			}
		default:
			return bad("", "Unknown LIST return option "+a)
		}
	}
	return nil
}

// parseRefPattern decodes the reference and the pattern(s).
func (s *session) parseRefPattern(req *listRequest, refV, patV imap.Value) error {
	ref, err := s.decodeName(refV)
	if err != nil {
		return err
	}
	req.ref = ref
	pats := []imap.Value{patV}
	if patV.Kind == imap.KindList && !req.lsub {
		req.extended = true
		pats = patV.List
		if len(pats) == 0 {
			return bad("", "Empty pattern list")
		}
	}
	for _, p := range pats {
		pat, err := s.decodeName(p)
		if err != nil {
			return err
		}
		if len(ref)+len(pat) > maxPatternBytes {
			return bad("", "Pattern too long")
		}
		req.patterns = append(req.patterns, pat)
	}
	return nil
}

// listEntry is one name a LIST may return.
type listEntry struct {
	name     string
	mb       *store.Mailbox // nil: not a mailbox, only a parent of some
	children bool
}

// list answers a LIST or LSUB.
func (s *session) list(req *listRequest) error {
	if len(req.patterns) == 1 && req.patterns[0] == "" && !req.lsub {
		root := ""
		if i := strings.IndexByte(req.ref, delimiter); i >= 0 {
			root = req.ref[:i+1]
		}
		s.w.Raw(`* LIST (\Noselect) "/" `).Mailbox(root).CRLF() // RFC 9051 6.3.9: the delimiter
		return nil
	}
	m, err := newMatcher(req.ref, req.patterns)
	if err != nil {
		return err
	}
	all, err := s.srv.opts.Store.Mailboxes(s.ctx, s.account.ID)
	if err != nil {
		return err
	}
	for _, e := range listEntries(all) {
		s.listOne(req, m, e, all)
	}
	return nil
}

// listEntries returns every mailbox and every name above one, sorted
// with INBOX first, and whether each has children.
func listEntries(all []store.Mailbox) []listEntry {
	byName := make(map[string]*listEntry, len(all))
	for i := range all {
		mb := &all[i]
		if e, ok := byName[mb.Name]; ok {
			e.mb = mb
		} else {
			byName[mb.Name] = &listEntry{name: mb.Name, mb: mb}
		}
		for _, p := range parentNames(mb.Name) {
			e, ok := byName[p]
			if !ok {
				e = &listEntry{name: p}
				byName[p] = e
			}
			e.children = true
		}
	}
	out := make([]listEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].name, out[j].name
		if (a == "INBOX") != (b == "INBOX") {
			return a == "INBOX"
		}
		return a < b
	})
	return out
}

// listOne writes the LIST/LSUB (and STATUS) response for e, if it is
// selected by req.
func (s *session) listOne(req *listRequest, m *matcher, e listEntry, all []store.Mailbox) {
	if !m.match(e.name) {
		return
	}
	// Does a descendant satisfy the selection without matching the
	// pattern? Then a name that does not itself qualify is still
	// returned: as \Noselect/\NonExistent when it is no mailbox
	// (RFC 9051 6.3.9 "%"). With RECURSIVEMATCH every name with a
	// descendant that satisfies the selection carries CHILDINFO, also
	// one that qualifies itself (RFC 5258 3.5 and its example 9, "eps2").
	qualifies := func(mb *store.Mailbox) bool {
		return (!req.selSubscribed || mb.Subscribed) && (!req.selSpecialUse || mb.SpecialUse != "")
	}
	self := e.mb != nil && qualifies(e.mb)
	hidden, selectedBelow := false, false
	if !self || (req.recursive && req.selSubscribed) {
		for i := range all {
			if isInferior(all[i].Name, e.name) && qualifies(&all[i]) {
				selectedBelow = true
				hidden = hidden || !m.match(all[i].Name)
			}
		}
	}
	childInfo := req.recursive && req.selSubscribed && selectedBelow
	switch {
	case self:
	case e.mb == nil && hidden && !req.selSpecialUse:
	case childInfo:
	case req.lsub && hidden:
	default:
		return
	}
	s.writeListLine(req, e, self, childInfo)
	if req.retStatus != nil && e.mb != nil {
		s.writeStatusData(*e.mb, req.retStatus)
	}
}

// writeListLine writes "* LIST (attributes) "/" name [(CHILDINFO ...)]".
func (s *session) writeListLine(req *listRequest, e listEntry, self, childInfo bool) {
	var attrs []string
	switch {
	case e.mb == nil && (req.lsub || !(req.extended || s.rev2)):
		attrs = append(attrs, `\Noselect`)
	case e.mb == nil:
		attrs = append(attrs, `\NonExistent`)
	case req.lsub && !self:
		attrs = append(attrs, `\Noselect`) // RFC 3501 6.3.9: not itself subscribed
	}
	if !req.lsub {
		if e.children {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if e.mb != nil && e.mb.SpecialUse != "" {
			attrs = append(attrs, e.mb.SpecialUse)
		}
		if req.retSubscribed && e.mb != nil && e.mb.Subscribed {
			attrs = append(attrs, `\Subscribed`)
		}
	}
	kind := "LIST"
	if req.lsub {
		kind = "LSUB"
	}
	s.w.Raw("* ").Raw(kind).Raw(" (").Raw(strings.Join(attrs, " ")).Raw(`) "/" `).Mailbox(e.name)
	if childInfo {
		s.w.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
	}
	s.w.CRLF()
}

// matcher matches names against LIST patterns: "*" matches anything,
// "%" anything but the delimiter (RFC 9051 6.3.9). Patterns become
// anchored regular expressions, so matching is linear in the name.
type matcher struct{ res []*regexp.Regexp }

func newMatcher(ref string, patterns []string) (*matcher, error) {
	m := &matcher{}
	for _, p := range patterns {
		full := ref + p
		if strings.HasPrefix(p, string(delimiter)) && strings.HasSuffix(ref, string(delimiter)) {
			full = ref + p[1:]
		}
		re, err := regexp.Compile(patternRegexp(inboxPattern(full)))
		if err != nil {
			return nil, bad("", "Pattern too complex")
		}
		m.res = append(m.res, re)
	}
	return m, nil
}

// inboxPattern spells a leading "inbox" (any case, as a whole level or
// followed by a wildcard) as INBOX: INBOX is case-insensitive.
func inboxPattern(p string) string {
	if len(p) >= 5 && strings.EqualFold(p[:5], "INBOX") && (len(p) == 5 || strings.ContainsRune("/*%", rune(p[5]))) {
		return "INBOX" + p[5:]
	}
	return p
}

func patternRegexp(p string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '%':
			b.WriteString(`[^/]*`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return b.String()
}

func (m *matcher) match(name string) bool {
	for _, re := range m.res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}
