package smtpserver

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// maxPath is RFC 5321 4.5.3.1.3: a path is at most 256 octets.
const maxPath = 256

var errPathSyntax = errors.New("bad address syntax")

// pathArg extracts the mailbox from a raw MAIL FROM / RCPT TO command line
// (verb, space, then prefix "FROM:" or "TO:"), strictly per RFC 5321
// 4.1.2 (RFC 6531 3.3 for UTF-8). go-smtp's own parser unquotes quoted
// local parts, losing the difference between `"a@b"@c` and `a@b@c`, so
// the address is taken from the line itself; go-smtp still parses the
// ESMTP parameters. The result keeps the local part exactly as written
// (quotes included) and drops a source route (RFC 5321 4.1.1.3: accepted,
// ignored). "" is the null reverse-path "<>" (only when null is true).
// A missing pair of angle brackets is tolerated, as go-smtp does.
func pathArg(line, prefix string, null bool) (string, error) {
	if len(line) < 5 || !hasPrefixFold(line[5:], prefix) {
		return "", errPathSyntax
	}
	s := strings.TrimLeft(line[5+len(prefix):], " ")
	if null && strings.HasPrefix(s, "<>") {
		if rest := s[2:]; rest != "" && rest[0] != ' ' {
			return "", errPathSyntax
		}
		return "", nil
	}
	bracket := strings.HasPrefix(s, "<")
	if !null && bracket && hasPrefixFold(s, "<postmaster>") {
		// RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be
		// accepted; the backend routes it.
		if rest := s[len("<postmaster>"):]; rest == "" || rest[0] == ' ' {
			return "Postmaster", nil
		}
	}
	if bracket {
		s = s[1:]
		var err error
		if s, err = skipRoute(s); err != nil {
			return "", err
		}
	}
	mbox, rest, err := mailbox(s)
	if err != nil {
		return "", err
	}
	if bracket {
		if !strings.HasPrefix(rest, ">") {
			return "", errPathSyntax
		}
		rest = rest[1:]
	}
	if rest != "" && rest[0] != ' ' {
		return "", errPathSyntax
	}
	if len(mbox)+2 > maxPath || !utf8.ValidString(mbox) {
		return "", errPathSyntax
	}
	return mbox, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// skipRoute drops an A-d-l: "@dom,@dom:" (RFC 5321 4.1.2).
func skipRoute(s string) (string, error) {
	if !strings.HasPrefix(s, "@") {
		return s, nil
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return "", errPathSyntax
	}
	for _, hop := range strings.Split(s[:i], ",") {
		if !strings.HasPrefix(hop, "@") {
			return "", errPathSyntax
		}
		if d, rest, err := domain(hop[1:]); err != nil || rest != "" || strings.HasSuffix(d, ".") {
			return "", errPathSyntax
		}
	}
	return s[i+1:], nil
}

// mailbox parses Local-part "@" ( Domain / address-literal ).
func mailbox(s string) (mbox, rest string, err error) {
	var local string
	if strings.HasPrefix(s, `"`) {
		local, rest, err = quotedString(s)
	} else {
		local, rest, err = dotString(s)
	}
	if err != nil || !strings.HasPrefix(rest, "@") {
		return "", "", errPathSyntax
	}
	rest = rest[1:]
	var dom string
	if strings.HasPrefix(rest, "[") {
		dom, rest, err = addressLiteral(rest)
	} else {
		dom, rest, err = domain(rest)
	}
	if err != nil {
		return "", "", err
	}
	return local + "@" + dom, rest, nil
}

func isAtext(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", b) >= 0
}

// dotString is Atom *("." Atom).
func dotString(s string) (string, string, error) {
	i, atomStart := 0, true
	for i < len(s) {
		b := s[i]
		if b == '.' {
			if atomStart {
				return "", "", errPathSyntax
			}
			atomStart = true
		} else if isAtext(b) {
			atomStart = false
		} else {
			break
		}
		i++
	}
	if i == 0 || atomStart {
		return "", "", errPathSyntax
	}
	return s[:i], s[i:], nil
}

// quotedString is DQUOTE *QcontentSMTP DQUOTE, returned with its quotes.
func quotedString(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '"':
			return s[:i+1], s[i+1:], nil
		case b == '\\':
			if i+1 >= len(s) || s[i+1] < 32 || s[i+1] == 127 {
				return "", "", errPathSyntax
			}
			i++
		case b < 32 || b == 127:
			return "", "", errPathSyntax
		}
	}
	return "", "", errPathSyntax
}

// domain is sub-domain *("." sub-domain), letters, digits and hyphens or
// UTF-8 (U-labels, RFC 6531). A single trailing dot is let through: the
// backend canonicalises it (and must not treat it as a way around relay
// checks).
func domain(s string) (string, string, error) {
	i, labelLen := 0, 0
scan:
	for i < len(s) {
		b := s[i]
		switch {
		case b == '.':
			if labelLen == 0 {
				return "", "", errPathSyntax
			}
			labelLen = 0
		case b == '-' || b >= 0x80 || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9':
			labelLen++
			if labelLen > 63*4 {
				return "", "", errPathSyntax
			}
		default:
			break scan
		}
		i++
	}
	d := s[:i]
	if d == "" || d == "." || strings.HasPrefix(d, "-") {
		return "", "", errPathSyntax
	}
	return d, s[i:], nil
}

// addressLiteral is "[" ... "]" with dcontent (RFC 5321 4.1.3).
func addressLiteral(s string) (string, string, error) {
	for i := 1; i < len(s); i++ {
		b := s[i]
		switch {
		case b == ']':
			if i == 1 {
				return "", "", errPathSyntax
			}
			return s[:i+1], s[i+1:], nil
		case b < 33 || b > 126 || b == '[' || b == '\\':
			return "", "", errPathSyntax
		}
	}
	return "", "", errPathSyntax
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
