package imap

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// SeqRange is one range of a sequence set. 0 stands for "*" (the largest
// number in use). Normalised: Start <= Stop unless one is 0, and a range
// with "*" has it in Stop ("*:4" is {4, 0}, "*" is {0, 0}).
type SeqRange struct{ Start, Stop uint32 }

// SeqSet is a parsed sequence set (RFC 9051 9 sequence-set) of message
// sequence numbers or UIDs, or "$" (SEARCHRES, RFC 5182 2), which the
// caller replaces by the saved search result.
type SeqSet struct {
	Ranges []SeqRange
	Dollar bool
}

// ErrSeqSet is returned (wrapped) by ParseSeqSet.
var ErrSeqSet = errors.New("imap: invalid sequence set")

func seqErr(msg string) error { return errors.Join(ErrSeqSet, errors.New(msg)) }

// ParseSeqSet parses "1", "1:3", "3:1", "*", "1:*", "*:4", comma lists of
// these, and "$" alone. Numbers are nz-number (1..4294967295, no leading
// zero).
func ParseSeqSet(s string) (SeqSet, error) {
	if s == "$" {
		return SeqSet{Dollar: true}, nil
	}
	if s == "" {
		return SeqSet{}, seqErr("empty")
	}
	var set SeqSet
	for item := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(item, ":")
		start, err := parseSeqNumber(a)
		if err != nil {
			return SeqSet{}, err
		}
		stop := start
		if isRange {
			if stop, err = parseSeqNumber(b); err != nil {
				return SeqSet{}, err
			}
		}
		set.Ranges = append(set.Ranges, normRange(start, stop))
	}
	return set, nil
}

func normRange(a, b uint32) SeqRange {
	if a == 0 {
		a, b = b, a
	}
	if b != 0 && a > b {
		a, b = b, a
	}
	return SeqRange{a, b}
}

// parseSeqNumber: seq-number = nz-number / "*"; "*" is 0.
func parseSeqNumber(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	if s == "" {
		return 0, seqErr("empty item")
	}
	if s[0] == '0' {
		return 0, seqErr("zero or leading zero")
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, seqErr("not a number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, seqErr("number too large")
	}
	return uint32(n), nil
}

// Contains reports whether n is in the set, with star the value of "*"
// (the largest sequence number or UID in use). n == 0 means "*". A range
// with "*" covers both ways: "*:4" with star 2 is 2:4 (RFC 9051 9
// seq-range). A Dollar set contains nothing: resolve "$" first.
func (s SeqSet) Contains(n, star uint32) bool {
	if n == 0 {
		n = star
	}
	for _, r := range s.Ranges {
		if lo, hi := r.Bounds(star); lo <= n && n <= hi {
			return true
		}
	}
	return false
}

// Dynamic reports whether the set uses "*" (its meaning depends on the
// mailbox).
func (s SeqSet) Dynamic() bool {
	for _, r := range s.Ranges {
		if r.Start == 0 || r.Stop == 0 {
			return true
		}
	}
	return false
}

// String formats the set as IMAP text ("$" for a Dollar set, "" for an
// empty one).
func (s SeqSet) String() string {
	if s.Dollar {
		return "$"
	}
	b := make([]byte, 0, 8*len(s.Ranges))
	for i, r := range s.Ranges {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSeq(b, r.Start)
		if r.Stop != r.Start {
			b = append(b, ':')
			b = appendSeq(b, r.Stop)
		}
	}
	return string(b)
}

func appendSeq(b []byte, n uint32) []byte {
	if n == 0 {
		return append(b, '*')
	}
	return strconv.AppendUint(b, uint64(n), 10)
}

// FormatUIDs formats numbers as a compact sequence set ("1:3,7,9:10"):
// sorted, duplicates and zeros dropped, runs joined. "" for none.
func FormatUIDs(uids []uint32) string {
	u := slices.Clone(uids)
	slices.Sort(u)
	u = slices.Compact(u)
	var b []byte
	for i := 0; i < len(u); {
		if u[i] == 0 {
			i++
			continue
		}
		j := i
		for j+1 < len(u) && u[j+1] == u[j]+1 {
			j++
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(u[i]), 10)
		if j > i {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(u[j]), 10)
		}
		i = j + 1
	}
	return string(b)
}

// Bounds returns the range's smallest and largest value, "*" (0) taken as
// star.
func (r SeqRange) Bounds(star uint32) (lo, hi uint32) {
	lo, hi = r.Start, r.Stop
	if lo == 0 {
		lo = star
	}
	if hi == 0 {
		hi = star
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}
