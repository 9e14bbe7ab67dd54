package message

import (
	"strings"
)

// Envelope is the IMAP ENVELOPE of a message (RFC 9051 7.5.2). String
// fields are the raw header values, unfolded and trimmed, with encoded
// words left encoded; "" stands for NIL. Sender and ReplyTo are set to From
// when their header is absent or yields no address, as RFC 9051 7.5.2 asks.
type Envelope struct {
	Date    string
	Subject string
	From    []Address
	Sender  []Address
	ReplyTo []Address
	To      []Address
	Cc      []Address
	Bcc     []Address

	InReplyTo string
	MessageID string
}

// Address is one element of an ENVELOPE address list (RFC 9051 7.5.2).
// A normal address has a Host. Group syntax (RFC 5322 3.4) is represented
// as IMAP does: a group start has Host "" and the group name in Mailbox;
// a group end has Host "" and Mailbox "". An address without a domain gets
// Host MissingDomain, one without a local part Mailbox MissingMailbox.
type Address struct {
	Name    string // display name, raw (may hold encoded words); "" = NIL
	ADL     string // obsolete source route ("@a,@b"); "" = NIL
	Mailbox string // local part, unquoted; or the group name
	Host    string // domain
}

// Placeholders for missing address parts (as Dovecot writes them).
const (
	MissingDomain  = "MISSING_DOMAIN"
	MissingMailbox = "MISSING_MAILBOX"
)

// IsGroupStart reports whether a marks the start of a group.
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }

// IsGroupEnd reports whether a marks the end of a group.
func (a Address) IsGroupEnd() bool { return a.Host == "" && a.Mailbox == "" }

// maxAddresses bounds one address list.
const maxAddresses = 10000

func newEnvelope(f *fields) *Envelope {
	e := &Envelope{
		Date:      f.val[fDate],
		Subject:   f.val[fSubject],
		From:      ParseAddressList(f.val[fFrom]),
		Sender:    ParseAddressList(f.val[fSender]),
		ReplyTo:   ParseAddressList(f.val[fReplyTo]),
		To:        ParseAddressList(f.val[fTo]),
		Cc:        ParseAddressList(f.val[fCc]),
		Bcc:       ParseAddressList(f.val[fBcc]),
		InReplyTo: f.val[fInReplyTo],
		MessageID: f.val[fMessageID],
	}
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// token kinds of the address-list tokenizer.
const (
	tAtom    = iota // atom or dot-free text run
	tQuoted         // quoted string, content unescaped
	tComment        // comment, content without the parentheses
	tLiteral        // domain literal, brackets included
	tSpecial        // one of < > @ , : ; .
)

type token struct {
	kind  int
	text  string
	space bool // white space before the token
}

func (t token) is(c byte) bool { return t.kind == tSpecial && t.text[0] == c }

// tokenize splits an RFC 5322 address list into tokens, leniently.
func tokenize(s string) []token {
	var toks []token
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
			i++
			continue
		case c == '"':
			v, rest := unquote(s[i:])
			toks = append(toks, token{tQuoted, v, space})
			i = len(s) - len(rest)
		case c == '(':
			n, closed := commentEnd(s[i:])
			inner := s[i+1 : i+n]
			if closed {
				inner = s[i+1 : i+n-1]
			}
			toks = append(toks, token{tComment, strings.TrimSpace(inner), space})
			i += n
		case c == '[':
			n := strings.IndexByte(s[i:], ']')
			if n < 0 {
				n = len(s) - i - 1
			}
			toks = append(toks, token{tLiteral, s[i : i+n+1], space})
			i += n + 1
		case strings.IndexByte("<>@,:;.", c) >= 0:
			toks = append(toks, token{tSpecial, s[i : i+1], space})
			i++
		case c == ')' || c == ']':
			i++ // stray: skip
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n\"()[]<>@,:;.", s[j]) < 0 {
				j++
			}
			toks = append(toks, token{tAtom, s[i:j], space})
			i = j
		}
		space = false
	}
	return toks
}

// commentEnd returns the length of the (possibly nested) comment at the
// start of s; an unterminated comment runs to the end (closed is false).
func commentEnd(s string) (n int, closed bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return len(s), false
}

// ParseAddressList parses an RFC 5322 address-list (To, Cc, From, ...)
// leniently into ENVELOPE addresses: display names are unquoted but not
// decoded, a comment serves as the name of a bare addr-spec, group syntax
// becomes group start/end markers, and junk is skipped. It returns nil for
// an empty list.
func ParseAddressList(s string) []Address {
	p := &addrParser{toks: tokenize(s)}
	return p.list()
}

type addrParser struct {
	toks []token
	i    int
	out  []Address
}

func (p *addrParser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

func (p *addrParser) list() []Address {
	inGroup := false
	for p.i < len(p.toks) && len(p.out) < maxAddresses {
		if t := p.toks[p.i]; t.is(',') || t.is('>') {
			p.i++
			continue
		} else if t.is(';') {
			if inGroup {
				p.out = append(p.out, Address{})
				inGroup = false
			}
			p.i++
			continue
		}
		words, comment := p.words("<:@,;>")
		t, ok := p.peek()
		switch {
		case ok && t.is('<'):
			p.i++
			p.angle(phrase(words))
		case ok && t.is(':'):
			p.i++
			if name := phrase(words); name != "" && !inGroup {
				p.out = append(p.out, Address{Mailbox: name})
				inGroup = true
			}
		case ok && t.is('@'):
			p.i++
			host, c2 := p.domain()
			if comment == "" {
				comment = c2
			}
			p.add(Address{Name: comment, Mailbox: local(words), Host: host})
		default:
			if len(words) > 0 {
				p.add(Address{Name: comment, Mailbox: local(words), Host: ""})
			}
		}
	}
	if inGroup {
		p.out = append(p.out, Address{})
	}
	return p.out
}

// add appends a normal address, filling in missing parts.
func (p *addrParser) add(a Address) {
	if a.Mailbox == "" {
		a.Mailbox = MissingMailbox
	}
	if a.Host == "" {
		a.Host = MissingDomain
	}
	p.out = append(p.out, a)
}

// words collects tokens up to one of the specials in stop; comments are
// returned apart (the last one).
func (p *addrParser) words(stop string) (words []token, comment string) {
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.kind == tSpecial && strings.Contains(stop, t.text) {
			break
		}
		if t.kind == tComment {
			comment = t.text
			continue
		}
		words = append(words, t)
	}
	return words, comment
}

// angle parses the rest of an angle-addr after '<': [route ":"] addr-spec ">".
func (p *addrParser) angle(name string) {
	adl := ""
	if t, ok := p.peek(); ok && t.is('@') {
		start := p.i
		for p.i < len(p.toks) && isRouteToken(p.toks[p.i]) {
			p.i++
		}
		if t, ok := p.peek(); ok && t.is(':') {
			var b strings.Builder
			for _, t := range p.toks[start:p.i] {
				if t.kind != tComment {
					b.WriteString(t.text)
				}
			}
			adl = b.String()
			p.i++
		} else {
			p.i = start
		}
	}
	words, _ := p.words("@>,;")
	host := ""
	if t, ok := p.peek(); ok && t.is('@') {
		p.i++
		host, _ = p.domain()
	}
	if t, ok := p.peek(); ok && t.is('>') {
		p.i++
	}
	if len(words) == 0 && host == "" {
		return // "<>"
	}
	p.add(Address{Name: name, ADL: adl, Mailbox: local(words), Host: host})
}

// isRouteToken reports whether t can be part of an obs-route "@a,@b".
func isRouteToken(t token) bool {
	return t.kind == tAtom || t.kind == tLiteral || t.kind == tComment || t.is('@') || t.is(',') || t.is('.')
}

// domain collects a domain after '@': atoms, dots and literals, up to a
// special or a word that follows white space without a dot between.
func (p *addrParser) domain() (host, comment string) {
	var b strings.Builder
	prevDot := true
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if t.kind == tComment {
			comment = t.text
			continue
		}
		dot := t.is('.')
		if t.kind == tSpecial && !dot || t.kind == tQuoted || (t.space && !prevDot && !dot && b.Len() > 0) {
			break
		}
		b.WriteString(t.text)
		prevDot = dot
	}
	return b.String(), comment
}

// phrase joins display-name words, one space where the input had space.
func phrase(words []token) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 && w.space {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// local joins local-part words without spaces.
func local(words []token) string {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w.text)
	}
	return b.String()
}
