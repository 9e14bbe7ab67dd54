package sqlstore

import (
	"slices"
	"strings"

	"pillarbox/internal/store"
)

var systemFlags = [...]string{store.FlagSeen, store.FlagAnswered, store.FlagFlagged, store.FlagDeleted, store.FlagDraft}

// normFlags validates flags and returns them canonical, deduplicated and
// sorted. System flags get their canonical spelling; keywords are atoms
// (RFC 9051 9, flag-keyword) compared case-insensitively, the first
// spelling wins. \Recent is dropped (IMAP4rev2 has no such flag); other
// backslash names are refused with store.ErrInvalidName.
func normFlags(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if strings.HasPrefix(f, `\`) {
			if strings.EqualFold(f, `\Recent`) {
				continue
			}
			i := slices.IndexFunc(systemFlags[:], func(s string) bool { return strings.EqualFold(s, f) })
			if i < 0 {
				return nil, store.ErrInvalidName
			}
			f = systemFlags[i]
		} else if !validKeyword(f) {
			return nil, store.ErrInvalidName
		}
		if !hasFlag(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

// validKeyword reports whether k is an IMAP atom (RFC 9051 9: ATOM-CHAR).
func validKeyword(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// hasFlag reports whether flags holds f, case-insensitively.
func hasFlag(flags []string, f string) bool {
	return slices.ContainsFunc(flags, func(s string) bool { return strings.EqualFold(s, f) })
}

// applyFlags combines the current (normalised) flags with op and fl.
func applyFlags(cur []string, op store.FlagOp, fl []string) []string {
	var out []string
	switch op {
	case store.FlagReplace:
		out = slices.Clone(fl)
	case store.FlagAdd:
		out = slices.Clone(cur)
		for _, f := range fl {
			if !hasFlag(out, f) {
				out = append(out, f)
			}
		}
	case store.FlagRemove:
		for _, f := range cur {
			if !hasFlag(fl, f) {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}

func encodeFlags(f []string) string { return strings.Join(f, " ") }

func decodeFlags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// seenDeleted returns 1/0 for \Seen and \Deleted in f.
func seenDeleted(f []string) (seen, deleted int) {
	return boolInt(slices.Contains(f, store.FlagSeen)), boolInt(slices.Contains(f, store.FlagDeleted))
}
