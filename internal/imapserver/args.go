package imapserver

import (
	"strings"

	"pillarbox/internal/imap"
)

// Argument helpers shared by the command files. Each returns a *respError
// (BAD) the handler can return as it is.

// wantArgs checks the number of arguments.
func wantArgs(c *imap.Command, min, max int) error {
	if len(c.Args) < min || (max >= 0 && len(c.Args) > max) {
		return bad("", "Wrong number of arguments to "+c.Name)
	}
	return nil
}

// astring returns the text of an atom or an in-memory string
// (RFC 9051 astring). A spilled literal is refused: no astring needs to
// be that large.
func astring(v imap.Value) (string, error) {
	switch {
	case v.Kind == imap.KindAtom:
		return v.Atom, nil
	case v.Kind == imap.KindString && v.File == nil:
		return string(v.Str), nil
	case v.Kind == imap.KindString:
		return "", bad("TOOBIG", "Argument too long")
	}
	return "", bad("", "Expected an atom or a string")
}

// atomArg returns the upper-cased text of an atom argument.
func atomArg(v imap.Value) (string, error) {
	if v.Kind != imap.KindAtom {
		return "", bad("", "Expected an atom")
	}
	return strings.ToUpper(v.Atom), nil
}

// listArg returns the items of a parenthesized list.
func listArg(v imap.Value) ([]imap.Value, error) {
	if v.Kind != imap.KindList {
		return nil, bad("", "Expected a parenthesized list")
	}
	return v.List, nil
}

// atomList returns the upper-cased atoms of a parenthesized list.
func atomList(v imap.Value) ([]string, error) {
	items, err := listArg(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		a, err := atomArg(it)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
