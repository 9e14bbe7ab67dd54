package imapserver

import (
	"strings"
	"unicode/utf8"

	"pillarbox/internal/imap"
)

// Mailbox name rules (RFC 9051 5.1). Names are UTF-8 inside the server
// and in the store, '/' separates levels, and INBOX (any case) is spelled
// "INBOX".
const (
	delimiter    = '/'
	maxNameBytes = 255 // UTF-8 bytes of the whole name
	maxNameDepth = 32  // levels
)

// decodeName turns a mailbox argument into its UTF-8 name: modified
// UTF-7 (RFC 3501 5.1.3) unless UTF8=ACCEPT is enabled (RFC 6855 3).
// Bad encodings are BAD; the result is not validated (see checkName).
func (s *session) decodeName(v imap.Value) (string, error) {
	raw, err := astring(v)
	if err != nil {
		return "", err
	}
	if s.utf8 {
		if !utf8.ValidString(raw) {
			return "", bad("", "Mailbox name is not valid UTF-8")
		}
		return raw, nil
	}
	name, err := imap.DecodeMUTF7(raw)
	if err != nil {
		return "", bad("", "Mailbox name is not valid modified UTF-7")
	}
	return name, nil
}

// mailboxArg decodes, canonicalises and checks a mailbox argument.
func (s *session) mailboxArg(v imap.Value) (string, error) {
	name, err := s.decodeName(v)
	if err != nil {
		return "", err
	}
	name = canonicalName(name)
	if err := checkName(name); err != nil {
		return "", err
	}
	return name, nil
}

// canonicalName spells a first level "INBOX" in any case as "INBOX".
func canonicalName(name string) string {
	first, _, _ := strings.Cut(name, string(delimiter))
	if len(first) == 5 && strings.EqualFold(first, "INBOX") {
		return "INBOX" + name[5:]
	}
	return name
}

// checkName refuses names that are empty, too long or too deep, that
// begin or end with '/', have empty, "." or ".." levels, or contain
// control characters (NUL included) or the LIST wildcards.
func checkName(name string) error {
	switch {
	case name == "":
		return no("CANNOT", "Empty mailbox name")
	case len(name) > maxNameBytes:
		return no("CANNOT", "Mailbox name too long (at most 255 bytes)")
	case !utf8.ValidString(name):
		return bad("", "Mailbox name is not valid UTF-8")
	case name[0] == delimiter || name[len(name)-1] == delimiter:
		return no("CANNOT", "Mailbox name may not begin or end with /")
	case strings.Count(name, string(delimiter)) >= maxNameDepth:
		return no("CANNOT", "Mailbox name too deep (at most 32 levels)")
	}
	for _, r := range name {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError:
			return no("CANNOT", "Mailbox name contains control characters")
		case r == '*' || r == '%':
			return no("CANNOT", "Mailbox name may not contain * or %")
		}
	}
	for _, level := range strings.Split(name, string(delimiter)) {
		switch level {
		case "":
			return no("CANNOT", "Mailbox name has an empty level")
		case ".", "..":
			return no("CANNOT", `Mailbox name may not have "." or ".." levels`)
		}
	}
	return nil
}

// parentNames returns the names above name, outermost first
// ("a/b/c" -> "a", "a/b").
func parentNames(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == delimiter {
			out = append(out, name[:i])
		}
	}
	return out
}

// isInferior reports whether name is below parent in the hierarchy.
func isInferior(name, parent string) bool {
	return len(name) > len(parent) && name[len(parent)] == delimiter && strings.HasPrefix(name, parent)
}
