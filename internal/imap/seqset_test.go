package imap

import (
	"errors"
	"slices"
	"testing"
)

func TestParseSeqSet(t *testing.T) {
	tests := []struct {
		in     string
		want   []SeqRange
		dollar bool
		str    string
	}{
		{"1", []SeqRange{{1, 1}}, false, "1"},
		{"1:3", []SeqRange{{1, 3}}, false, "1:3"},
		{"3:1", []SeqRange{{1, 3}}, false, "1:3"},
		{"*", []SeqRange{{0, 0}}, false, "*"},
		{"1:*", []SeqRange{{1, 0}}, false, "1:*"},
		{"*:4", []SeqRange{{4, 0}}, false, "4:*"},
		{"*:*", []SeqRange{{0, 0}}, false, "*"},
		{"2,4:7,9,12:*", []SeqRange{{2, 2}, {4, 7}, {9, 9}, {12, 0}}, false, "2,4:7,9,12:*"},
		{"4294967295", []SeqRange{{4294967295, 4294967295}}, false, "4294967295"},
		{"$", nil, true, "$"},
	}
	for _, tc := range tests {
		s, err := ParseSeqSet(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !slices.Equal(s.Ranges, tc.want) || s.Dollar != tc.dollar || s.String() != tc.str {
			t.Errorf("%q: got %+v %q", tc.in, s, s.String())
		}
	}
	for _, bad := range []string{"", "0", "0:3", "1:0", "01", ",", "1,", ",1", "1,,2", "1:", ":1", "1:2:3",
		"a", "1a", "-1", "+1", " 1", "4294967296", "99999999999999999999", "$,1", "1,$", "$:1", "**", "1.5"} {
		if s, err := ParseSeqSet(bad); err == nil || !errors.Is(err, ErrSeqSet) {
			t.Errorf("%q accepted as %+v (err %v)", bad, s, err)
		}
	}
}

func TestSeqSetContains(t *testing.T) {
	tests := []struct {
		set     string
		star    uint32
		in, out []uint32
	}{
		{"1:3", 10, []uint32{1, 2, 3}, []uint32{4, 10}},
		{"5:*", 10, []uint32{5, 9, 10, 0}, []uint32{4, 11}},
		{"*:4", 2, []uint32{2, 3, 4}, []uint32{1, 5}}, // RFC 9051 9: "*:4" with star 2 is 2:4
		{"*", 7, []uint32{7, 0}, []uint32{6, 8}},
		{"1,5,9", 9, []uint32{1, 5, 9, 0}, []uint32{2, 8}},
		{"3:1,7", 0, []uint32{1, 2, 3, 7}, []uint32{4}},
		{"$", 5, nil, []uint32{1, 5}},
	}
	for _, tc := range tests {
		s, err := ParseSeqSet(tc.set)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tc.in {
			if !s.Contains(n, tc.star) {
				t.Errorf("%q star %d should contain %d", tc.set, tc.star, n)
			}
		}
		for _, n := range tc.out {
			if s.Contains(n, tc.star) {
				t.Errorf("%q star %d should not contain %d", tc.set, tc.star, n)
			}
		}
	}
}

func TestSeqSetDynamic(t *testing.T) {
	for in, want := range map[string]bool{"1:3": false, "1:*": true, "*": true, "5": false, "$": false} {
		s, _ := ParseSeqSet(in)
		if s.Dynamic() != want {
			t.Errorf("%q Dynamic = %v", in, !want)
		}
	}
}

func TestFormatUIDs(t *testing.T) {
	tests := []struct {
		in   []uint32
		want string
	}{
		{nil, ""},
		{[]uint32{5}, "5"},
		{[]uint32{1, 2, 3, 7, 9, 10}, "1:3,7,9:10"},
		{[]uint32{10, 9, 3, 1, 2, 7, 7, 3}, "1:3,7,9:10"},
		{[]uint32{0, 4, 0}, "4"},
		{[]uint32{4294967294, 4294967295}, "4294967294:4294967295"},
	}
	for _, tc := range tests {
		orig := slices.Clone(tc.in)
		if got := FormatUIDs(tc.in); got != tc.want {
			t.Errorf("FormatUIDs(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if !slices.Equal(orig, tc.in) {
			t.Errorf("FormatUIDs changed its input")
		}
	}
}
