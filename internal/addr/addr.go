// Package addr parses and normalises SMTP mailbox addresses (RFC 5321
// 4.1.2 Mailbox, extended for SMTPUTF8 by RFC 6531 3.3).
//
// An Address holds the local part in decoded form (a quoted local part is
// stored without its quotes and backslashes; String quotes it again when
// needed) and the domain as written (a dot-atom domain, possibly with
// U-labels and one trailing dot, or an address literal in brackets).
// Canonical gives the form used for lookups: lower-case local part and
// lower-case A-label domain without the trailing dot.
//
// Parse enforces the RFC 5321 4.5.3.1 limits (local part 64 octets as
// written, domain 255 octets as an A-label, path 256 octets including the
// angle brackets) and rejects source routes (RFC 5321 4.1.2 A-d-l and
// Appendix C) with ErrSourceRoute. Other routing tricks that are valid
// syntax ('%', '!', quoted '@' in the local part) are accepted and reported
// by HasRoutingTricks, so a relay check can refuse them.
//
// The package holds no state; the IDNA profile it uses is immutable.
package addr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Errors returned by Parse and ParseDomain (wrapped; test with errors.Is).
var (
	ErrSyntax      = errors.New("addr: invalid address")
	ErrTooLong     = errors.New("addr: address too long")
	ErrSourceRoute = errors.New("addr: source route not allowed")
)

// Limits of RFC 5321 4.5.3.1.
const (
	MaxLocal  = 64  // octets of the local part as written
	MaxDomain = 255 // octets of the domain (A-label form)
	MaxPath   = 256 // octets of "<" mailbox ">"
)

// profile converts and validates domains: UTS #46 lookup mapping (which
// lower-cases), STD3 (LDH) rules, Bidi rule and DNS length limits.
var profile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true),
	idna.Transitional(false))

// Address is an RFC 5321 mailbox: Local "@" Domain.
type Address struct {
	Local  string // decoded local part (no quotes), may be UTF-8
	Domain string // as written: domain (U- or A-labels) or "[literal]"
}

// Parse parses a mailbox as it appears between the angle brackets of MAIL
// FROM or RCPT TO ("local@domain", no brackets). Accepted: dot-string and
// quoted-string local parts, UTF-8 (RFC 6531), domains with U-labels or
// A-labels and at most one trailing dot, IPv4 and IPv6 address literals and
// general address literals. Rejected: empty input, source routes
// ("@a,@b:user@c", ErrSourceRoute), invalid UTF-8, control characters,
// bad syntax (ErrSyntax), and over-long parts (ErrTooLong).
func Parse(s string) (Address, error) {
	if len(s)+2 > MaxPath {
		return Address{}, fmt.Errorf("%w: path longer than %d octets", ErrTooLong, MaxPath)
	}
	if s == "" || !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if s[0] == '@' {
		if strings.Contains(s, ":") {
			return Address{}, fmt.Errorf("%w: %q", ErrSourceRoute, s)
		}
		return Address{}, fmt.Errorf("%w: empty local part", ErrSyntax)
	}
	local, rest, err := parseLocal(s)
	if err != nil {
		return Address{}, err
	}
	if n := len(s) - len(rest); n > MaxLocal {
		return Address{}, fmt.Errorf("%w: local part longer than %d octets", ErrTooLong, MaxLocal)
	}
	if !strings.HasPrefix(rest, "@") {
		return Address{}, fmt.Errorf("%w: missing @ in %q", ErrSyntax, s)
	}
	domain := rest[1:]
	if strings.HasPrefix(domain, "[") {
		if _, err := parseLiteral(domain); err != nil {
			return Address{}, err
		}
	} else if _, err := ParseDomain(domain); err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// parseLocal parses the local part at the start of s and returns it
// decoded and the rest of s (starting at '@' when well-formed).
func parseLocal(s string) (local, rest string, err error) {
	if s[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == '"':
				return b.String(), s[i+1:], nil
			case r == '\\':
				// RFC 5321 quoted-pairSMTP = "\" %d32-126
				if i+1 >= len(s) || s[i+1] < 32 || s[i+1] > 126 {
					return "", "", fmt.Errorf("%w: bad quoted pair", ErrSyntax)
				}
				b.WriteByte(s[i+1])
				i += 2
				continue
			case r < 32 || r == 127:
				return "", "", fmt.Errorf("%w: control character in local part", ErrSyntax)
			}
			b.WriteRune(r)
			i += n
		}
		return "", "", fmt.Errorf("%w: unterminated quoted local part", ErrSyntax)
	}
	i := strings.IndexByte(s, '@')
	if i < 0 {
		i = len(s)
	}
	if !isDotString(s[:i]) {
		return "", "", fmt.Errorf("%w: local part %q", ErrSyntax, s[:i])
	}
	return s[:i], s[i:], nil
}

// isAtext reports whether r is an RFC 5322 atext character, extended with
// non-ASCII characters for SMTPUTF8 (RFC 6531 3.3).
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// isDotString reports whether s is an RFC 5321 Dot-string.
func isDotString(s string) bool {
	if s == "" {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !isAtext(r) {
				return false
			}
		}
	}
	return true
}

// ParseDomain validates a domain name (U-labels or A-labels, at most one
// trailing dot; no address literals) and returns its canonical form: lower
// case A-labels without the trailing dot.
func ParseDomain(s string) (string, error) {
	d := strings.TrimSuffix(s, ".")
	if d == "" || strings.ContainsAny(d, "[]") {
		return "", fmt.Errorf("%w: domain %q", ErrSyntax, s)
	}
	a, err := profile.ToASCII(d)
	if err != nil {
		if len(d) > MaxDomain {
			return "", fmt.Errorf("%w: domain longer than %d octets", ErrTooLong, MaxDomain)
		}
		return "", fmt.Errorf("%w: domain %q: %v", ErrSyntax, s, err)
	}
	if len(a) > MaxDomain {
		return "", fmt.Errorf("%w: domain longer than %d octets", ErrTooLong, MaxDomain)
	}
	a = strings.ToLower(a)
	// RFC 5321 4.1.2: sub-domain = Let-dig [Ldh-str]
	for _, label := range strings.Split(a, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: domain %q", ErrSyntax, s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%w: domain %q", ErrSyntax, s)
			}
		}
	}
	return a, nil
}

// parseLiteral validates an address literal (RFC 5321 4.1.3) and returns its
// canonical form: "[1.2.3.4]", "[IPv6:2001:db8::1]", or a general literal
// with its tag lower-cased.
func parseLiteral(s string) (string, error) {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return "", fmt.Errorf("%w: address literal %q", ErrSyntax, s)
	}
	in := s[1 : len(s)-1]
	if len(s) > MaxDomain {
		return "", fmt.Errorf("%w: address literal too long", ErrTooLong)
	}
	tag, v, ok := strings.Cut(in, ":")
	if !ok {
		ip, err := netip.ParseAddr(in)
		if err != nil || !ip.Is4() {
			return "", fmt.Errorf("%w: address literal %q", ErrSyntax, s)
		}
		return "[" + ip.String() + "]", nil
	}
	if strings.EqualFold(tag, "IPv6") {
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", fmt.Errorf("%w: address literal %q", ErrSyntax, s)
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	// General-address-literal = Standardized-tag ":" 1*dcontent
	if tag == "" || tag[len(tag)-1] == '-' || !isLdh(tag) || v == "" {
		return "", fmt.Errorf("%w: address literal %q", ErrSyntax, s)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' {
			return "", fmt.Errorf("%w: address literal %q", ErrSyntax, s)
		}
	}
	return "[" + strings.ToLower(tag) + ":" + v + "]", nil
}

func isLdh(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// String returns the address in RFC 5321 form: the local part as a
// Dot-string when it is one, else as a quoted string.
func (a Address) String() string {
	if isDotString(a.Local) {
		return a.Local + "@" + a.Domain
	}
	var b strings.Builder
	b.Grow(len(a.Local) + len(a.Domain) + 3)
	b.WriteByte('"')
	for _, r := range a.Local {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteString(`"@`)
	b.WriteString(a.Domain)
	return b.String()
}

// Canonical returns the address used for lookups and comparisons: local
// part lower-cased (Unicode simple folding via strings.ToLower), domain as
// lower-case A-labels without a trailing dot, address literals normalised.
// A domain that does not validate (an Address not made by Parse) is only
// lower-cased.
func (a Address) Canonical() Address {
	c := Address{Local: strings.ToLower(a.Local)}
	var err error
	if strings.HasPrefix(a.Domain, "[") {
		c.Domain, err = parseLiteral(a.Domain)
	} else {
		c.Domain, err = ParseDomain(a.Domain)
	}
	if err != nil {
		c.Domain = strings.ToLower(strings.TrimSuffix(a.Domain, "."))
	}
	return c
}

// HasRoutingTricks reports whether the local part carries a routing
// instruction some mail systems act on: '%' ("user%other@relay", the
// "percent hack"), '!' (UUCP bang paths) or '@' (only possible in a quoted
// local part, "user@other"@relay). Such a local part must never be
// resolved to a non-local destination; a relay check should treat it as
// "not one of ours". Source routes never get this far: Parse rejects them
// with ErrSourceRoute. A trailing dot on the domain is no trick: Canonical
// removes it, so "user@example.com." is the same domain as
// "user@example.com". Address literals are reported by IsLiteral.
func (a Address) HasRoutingTricks() bool {
	return strings.ContainsAny(a.Local, "%!@")
}

// IsLiteral reports whether the domain is an address literal ("[1.2.3.4]").
func (a Address) IsLiteral() bool { return strings.HasPrefix(a.Domain, "[") }

// NeedsSMTPUTF8 reports whether the address has non-ASCII characters, so
// that it may only be used with the SMTPUTF8 extension (RFC 6531 3.4).
func (a Address) NeedsSMTPUTF8() bool {
	for _, s := range []string{a.Local, a.Domain} {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return true
			}
		}
	}
	return false
}

// Base splits a local part at its first '+' for subaddressing:
// "user+tag" gives ("user", "tag"), "user+" gives ("user", ""). A local
// part without '+', or starting with '+', is returned whole with tag "".
func Base(local string) (base, tag string) {
	i := strings.IndexByte(local, '+')
	if i <= 0 {
		return local, ""
	}
	return local[:i], local[i+1:]
}
