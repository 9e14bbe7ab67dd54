package imap

import (
	"bufio"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func s0(data string) step { return step{data: data} }

type decodeCase struct {
	name   string
	lim    Limits
	steps  []step
	want   []string
	conts  int
	spills int
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.lim, tc.steps...)
			got := h.run()
			if !slices.Equal(got, tc.want) {
				t.Errorf("results:\n got %q\nwant %q", got, tc.want)
			}
			if h.conts != tc.conts {
				t.Errorf("cont calls: got %d, want %d", h.conts, tc.conts)
			}
			if h.spills != tc.spills {
				t.Errorf("spill calls: got %d, want %d", h.spills, tc.spills)
			}
			if n := dirEntries(t, h.dir); n != 0 {
				t.Errorf("%d spill files left", n)
			}
		})
	}
}

func TestDecodeBasics(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "noop", steps: []step{s0("A1 NOOP\r\n")}, want: []string{"A1 NOOP"}},
		{name: "name case", steps: []step{s0("a1 nOoP\r\n")}, want: []string{"a1 NOOP"}},
		{name: "uid joined", steps: []step{s0("A2 uid fetch 1:* FLAGS\r\n")}, want: []string{"A2 UID FETCH 1:* FLAGS"}},
		{name: "uid alone", steps: []step{s0("A3 UID\r\nA4 NOOP\r\n")}, want: []string{"BAD tag=A3 code= fatal=false", "A4 NOOP"}},
		{name: "uid bad", steps: []step{s0("A3 UID (\r\n")}, want: []string{"BAD tag=A3 code= fatal=false"}},
		{name: "tag with ]", steps: []step{s0("A]1 NOOP\r\n")}, want: []string{"A]1 NOOP"}},
		{name: "tag +", steps: []step{s0("+A NOOP\r\nA2 NOOP\r\n")}, want: []string{"BAD tag= code= fatal=false", "A2 NOOP"}},
		{name: "tag %", steps: []step{s0("A%1 NOOP\r\n")}, want: []string{"BAD tag= code= fatal=false"}},
		{name: "tag *", steps: []step{s0("* NOOP\r\n")}, want: []string{"BAD tag= code= fatal=false"}},
		{name: "tag {", steps: []step{s0("A{ NOOP\r\n")}, want: []string{"BAD tag= code= fatal=false"}},
		{name: "tag only", steps: []step{s0("A1\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "tag and space", steps: []step{s0("A1 \r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "bad name", steps: []step{s0("A1 NO*OP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "empty line", steps: []step{s0("\r\nA2 NOOP\r\n")}, want: []string{"BAD tag= code= fatal=false", "A2 NOOP"}},
		{name: "bare LF", steps: []step{s0("A1 NOOP\nA2 NOOP\r\n")}, want: []string{"A1 NOOP", "A2 NOOP"}},
		{name: "bare CR", steps: []step{s0("A1 NO\rOP\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "trailing space", steps: []step{s0("A1 NOOP \r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "double space", steps: []step{s0("A1 X a  b\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "eof in line", steps: []step{s0("A1 NOOP")}, want: []string{"ERR unexpected EOF"}},
		{name: "atoms", steps: []step{s0(`A1 X 1:* \Seen % * INBOX] a{b ~peter $ NIL` + "\r\n")},
			want: []string{`A1 X 1:* \Seen % * INBOX] a{b ~peter $ NIL`}},
		{name: "8-bit atom", steps: []step{s0("A1 SELECT Entwürfe\r\n")}, want: []string{"A1 SELECT Entwürfe"}},
		{name: "ctl in atom", steps: []step{s0("A1 X a\x01b\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "atom then quote", steps: []step{s0("A1 X a\"b\"\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "bracket alone", steps: []step{s0("A1 X [abc]\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "lists", steps: []step{s0("A1 X () (a (b \"c\") NIL) x\r\n")}, want: []string{`A1 X () (a (b "c") NIL) x`}},
		{name: "list unterminated", steps: []step{s0("A1 X (a b\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "list space before close", steps: []step{s0("A1 X (a )\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "stray close", steps: []step{s0("A1 X a)\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "list glued", steps: []step{s0("A1 X (a)(b)\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
	})
}

func TestDecodeQuoted(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "escapes", steps: []step{s0(`A1 LOGIN "us\"er" "p\\w" ""` + "\r\n")}, want: []string{`A1 LOGIN "us\"er" "p\\w" ""`}},
		{name: "utf8", steps: []step{s0("A1 SELECT \"Entwürfe/日本語\"\r\n")}, want: []string{`A1 SELECT "Entwürfe/日本語"`}},
		{name: "specials kept", steps: []step{s0(`A1 X "a (b) [c] {3} %*"` + "\r\n")}, want: []string{`A1 X "a (b) [c] {3} %*"`}},
		{name: "bad escape", steps: []step{s0(`A1 X "a\qb"` + "\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "escape at end", steps: []step{s0(`A1 X "a\` + "\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "unterminated", steps: []step{s0(`A1 X "abc` + "\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "NUL", steps: []step{s0("A1 X \"a\x00b\"\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "CR", steps: []step{s0("A1 X \"a\rb\"\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "glued", steps: []step{s0(`A1 X "a""b"` + "\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
	})
}

func TestDecodeLiterals(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "sync", steps: []step{s0("A1 LOGIN {4}\r\n"), {1, "user {4}\r\n"}, {2, "pass\r\n"}},
			want: []string{`A1 LOGIN L"user" L"pass"`}, conts: 2},
		{name: "sync then more args", steps: []step{s0("A1 APPEND INBOX {3}\r\n"), {1, "abc (\\Seen) x\r\n"}},
			want: []string{`A1 APPEND INBOX L"abc" (\Seen) x`}, conts: 1},
		{name: "literal plus", steps: []step{s0("A1 LOGIN {4+}\r\nuser {4+}\r\npass\r\n")},
			want: []string{`A1 LOGIN L"user" L"pass"`}},
		{name: "zero", steps: []step{s0("A1 LOGIN {0+}\r\n {0}\r\n"), {1, "\r\n"}},
			want: []string{`A1 LOGIN L"" L""`}, conts: 1},
		{name: "multiappend", steps: []step{s0("A1 APPEND INBOX {1+}\r\na (\\Seen) {1+}\r\nb\r\n")},
			want: []string{`A1 APPEND INBOX L"a" (\Seen) L"b"`}},
		{name: "in list", steps: []step{s0("A1 APPEND INBOX UTF8 (~{3+}\r\na\x00b)\r\n")},
			want: []string{`A1 APPEND INBOX UTF8 (B"a\x00b")`}},
		{name: "literal8 sync", steps: []step{s0("A1 APPEND INBOX ~{3}\r\n"), {1, "a\x00b\r\n"}},
			want: []string{`A1 APPEND INBOX B"a\x00b"`}, conts: 1},
		{name: "crlf inside", steps: []step{s0("A1 X {4+}\r\n\r\n\r\n\r\n")}, want: []string{`A1 X L"\r\n\r\n"`}},
		{name: "NUL", steps: []step{s0("A1 APPEND INBOX {3+}\r\na\x00b\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "NUL then more literals", steps: []step{s0("A1 X {3+}\r\na\x00b {2+}\r\nxy\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "not at end", steps: []step{s0("A1 X {3} foo\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "no digits", steps: []step{s0("A1 X {}\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "bad count", steps: []step{s0("A1 X {1a}\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "glued after", steps: []step{s0("A1 X {1+}\r\nab\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "two glued", steps: []step{s0("A1 X {1+}\r\na{1+}\r\nb\r\nA2 NOOP\r\n")}, want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "eof in literal", steps: []step{s0("A1 X {5+}\r\nab")}, want: []string{"ERR unexpected EOF"}},
		{name: "eof after literal", steps: []step{s0("A1 X {2+}\r\nab")}, want: []string{"ERR unexpected EOF"}},
	})
}

func TestDecodeLimits(t *testing.T) {
	small := Limits{MaxLiteral: 10, MaxCommandBytes: 15}
	long := strings.Repeat("x", 40)
	runDecodeCases(t, []decodeCase{
		{name: "literal at limit", lim: small, steps: []step{s0("A1 APPEND INBOX {10}\r\n"), {1, "0123456789\r\n"}},
			want: []string{`A1 APPEND INBOX L"0123456789"`}, conts: 1},
		{name: "sync over literal limit", lim: small, steps: []step{s0("A1 APPEND INBOX {11}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=false", "A2 NOOP"}},
		{name: "sync huge count", lim: small, steps: []step{s0("A1 APPEND INBOX {99999999999999999999999}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=false", "A2 NOOP"}},
		{name: "nonsync huge count", lim: small, steps: []step{s0("A1 APPEND INBOX {99999999999999999999999+}\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "nonsync over literal limit", lim: small, steps: []step{s0("A1 APPEND INBOX {11+}\r\n01234567890\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "sync over command limit", lim: small, steps: []step{s0("A1 APPEND INBOX {10}\r\n"), {1, "0123456789 {6}\r\nA2 NOOP\r\n"}},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=false", "A2 NOOP"}, conts: 1},
		{name: "nonsync over command limit", lim: small, steps: []step{s0("A1 APPEND INBOX {10+}\r\n0123456789 {6+}\r\n012345\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "line too long", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X " + long + "\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "line at limit", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X 012345678901234\r\n")},
			want: []string{"A1 X 012345678901234"}},
		{name: "line one over", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X 0123456789012345\nA2 NOOP\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "long line no tag", lim: Limits{MaxLine: 20}, steps: []step{s0(long + "\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag= code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "line far too long", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X " + strings.Repeat("y", 400) + "\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=true"}},
		{name: "long line ends in sync literal", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X " + long + " {5}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "long line ends in nonsync literal", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X " + long + " {5+}\r\nA3 X more\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "long line ends in big nonsync literal", lim: Limits{MaxLine: 20, MaxLiteral: 10}, steps: []step{s0("A1 X " + long + " {50+}\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "long continuation line", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X {2+}\r\nab " + long + "\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "lines add up", lim: Limits{MaxLine: 20}, steps: []step{s0("A1 X abcdefgh {2+}\r\nab abcdefgh\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "depth ok", lim: Limits{MaxDepth: 2}, steps: []step{s0("A1 X (()) a[(b)]\r\n")}, want: []string{"A1 X (()) a[(b)]"}},
		{name: "depth over", lim: Limits{MaxDepth: 2}, steps: []step{s0("A1 X ((()))\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "depth over in section", lim: Limits{MaxDepth: 2}, steps: []step{s0("A1 X (a[(b)])\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "values ok", lim: Limits{MaxValues: 3}, steps: []step{s0("A1 X (a b)\r\n")}, want: []string{"A1 X (a b)"}},
		{name: "values over", lim: Limits{MaxValues: 3}, steps: []step{s0("A1 X a b c d\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
		{name: "values over at nonsync literal", lim: Limits{MaxValues: 1}, steps: []step{s0("A1 X a {3+}\r\nabc\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code=LIMIT fatal=false", "A2 NOOP"}},
	})
}

// A syntax error before a literal announcement: the rest of the command is
// skipped without a continuation request, keeping the stream in sync.
func TestDecodeResync(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "error then sync literal", steps: []step{s0("A1 X ) {3}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "error then nonsync literals", steps: []step{s0("A1 X ) {3+}\r\nabc {2+}\r\nxy\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "error then nonsync literal then sync", steps: []step{s0("A1 X ) {3+}\r\nabc {2}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "error then big nonsync literal", lim: Limits{MaxLiteral: 10}, steps: []step{s0("A1 X ) {11+}\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "error after literal", steps: []step{s0("A1 X {3}\r\n"), {1, "abc ) {2+}\r\nxy\r\nA2 NOOP\r\n"}},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}, conts: 1},
		{name: "error then huge nonsync count", steps: []step{s0("A1 X ) {99999999999999999999999+}\r\n")},
			want: []string{"BAD tag=A1 code=TOOBIG fatal=true"}},
		{name: "error then huge sync count", steps: []step{s0("A1 X ) {99999999999999999999999}\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}},
		{name: "bad tag then nonsync literal", steps: []step{s0("+ X {3+}\r\nabc\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag= code= fatal=false", "A2 NOOP"}},
	})
}

func TestDecodeSections(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "fetch", steps: []step{s0("A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BODY[] BINARY[1.2] BODY[1.MIME] FLAGS)\r\n")},
			want: []string{"A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BODY[] BINARY[1.2] BODY[1.MIME] FLAGS)"}},
		{name: "quoted and nested", steps: []step{s0(`A1 X a["x]" (b ("c"))]` + "\r\n")}, want: []string{`A1 X a["x]" (b ("c"))]`}},
		{name: "literal inside", steps: []step{s0("A1 FETCH 1 BODY[HEADER.FIELDS ({4}\r\n"), {1, "From)]\r\n"}},
			want: []string{`A1 FETCH 1 BODY[HEADER.FIELDS (L"From")]`}, conts: 1},
		{name: "partial only digits", steps: []step{s0("A1 FETCH 1 BODY[]<12>\r\n")}, want: []string{"A1 FETCH 1 BODY[]<12>"}},
		{name: "empty partial", steps: []step{s0("A1 FETCH 1 BODY[]<>\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "bad partial", steps: []step{s0("A1 FETCH 1 BODY[]<a>\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "unterminated partial", steps: []step{s0("A1 FETCH 1 BODY[]<1\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "unterminated section", steps: []step{s0("A1 FETCH 1 BODY[1\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "glued after section", steps: []step{s0("A1 FETCH 1 BODY[1]x\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "string then bracket", steps: []step{s0(`A1 X "a"[1]` + "\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
		{name: "space in section", steps: []step{s0("A1 X a[ ]\r\n")}, want: []string{"BAD tag=A1 code= fatal=false"}},
	})
}

func TestDecodeSectionFields(t *testing.T) {
	h := newHarness(t, Limits{}, s0("A1 FETCH 1 (BODY[]<0.5> BODY.PEEK[1.2] FLAGS)\r\n"))
	cmd, err := h.dec.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	l := cmd.Args[1].List
	if !l[0].HasSection || len(l[0].Section) != 0 || l[0].Section == nil || l[0].Partial != "0.5" || l[0].Atom != "BODY" {
		t.Errorf("BODY[]<0.5>: %+v", l[0])
	}
	if !l[1].HasSection || len(l[1].Section) != 1 || l[1].Section[0].Atom != "1.2" || l[1].Partial != "" {
		t.Errorf("BODY.PEEK[1.2]: %+v", l[1])
	}
	if l[2].HasSection || l[2].Atom != "FLAGS" {
		t.Errorf("FLAGS: %+v", l[2])
	}
}

func TestValueHelpers(t *testing.T) {
	h := newHarness(t, Limits{}, s0(`A1 X NIL nil "NIL" abc (a) {2+}`+"\r\nxy\r\n"))
	cmd, err := h.dec.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	nils := []bool{true, true, false, false, false, false}
	strs := []string{"NIL", "nil", "NIL", "abc", "", "xy"}
	kinds := []Kind{KindAtom, KindAtom, KindString, KindAtom, KindList, KindString}
	for i, v := range cmd.Args {
		if v.IsNIL() != nils[i] || v.String() != strs[i] || v.Kind != kinds[i] {
			t.Errorf("arg %d: IsNIL %v String %q Kind %v", i, v.IsNIL(), v.String(), v.Kind)
		}
	}
	if !cmd.Args[5].Literal || cmd.Args[5].Size != 2 || cmd.Args[2].Literal || cmd.Args[2].Size != 3 {
		t.Errorf("Literal/Size wrong: %+v %+v", cmd.Args[5], cmd.Args[2])
	}
}

func TestDecodeSpill(t *testing.T) {
	lim := Limits{SpillOver: 4}
	runDecodeCases(t, []decodeCase{
		{name: "small stays in memory", lim: lim, steps: []step{s0("A1 X {4+}\r\nabcd\r\n")}, want: []string{`A1 X L"abcd"`}},
		{name: "big spills", lim: lim, steps: []step{s0("A1 APPEND INBOX {10}\r\n"), {1, "0123456789\r\n"}},
			want: []string{`A1 APPEND INBOX F"0123456789"`}, conts: 1, spills: 1},
		{name: "removed on error", lim: lim, steps: []step{s0("A1 APPEND INBOX {10+}\r\n0123456789 )\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}, spills: 1},
		{name: "NUL in spilled", lim: lim, steps: []step{s0("A1 APPEND INBOX {10+}\r\n0123\x0056789\r\nA2 NOOP\r\n")},
			want: []string{"BAD tag=A1 code= fatal=false", "A2 NOOP"}, spills: 1},
		{name: "binary spilled", lim: lim, steps: []step{s0("A1 APPEND INBOX ~{10+}\r\n0123\x0056789\r\n")},
			want: []string{`A1 APPEND INBOX F"0123\x0056789"`}, spills: 1},
		{name: "eof in spilled", lim: lim, steps: []step{s0("A1 APPEND INBOX {10+}\r\n01234")},
			want: []string{"ERR unexpected EOF"}, spills: 1},
		// 16*SpillOver = 64 bytes of small literals stay in memory, the rest spills.
		{name: "memory cap", lim: lim, steps: []step{s0(strings.Repeat("A1 X", 1) + strings.Repeat(" {4+}\r\nabcd", 17) + "\r\n")},
			want: []string{"A1 X" + strings.Repeat(` L"abcd"`, 16) + ` F"abcd"`}, spills: 1},
	})
}

func TestSpillFileAndClose(t *testing.T) {
	h := newHarness(t, Limits{SpillOver: 4}, s0("A1 APPEND INBOX (x {10+}\r\n0123456789)\r\n"))
	cmd, err := h.dec.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	v := cmd.Args[1].List[1]
	if v.File == nil || v.Str != nil || v.Size != 10 || !v.Literal || v.String() != "" {
		t.Fatalf("spilled value: %+v", v)
	}
	if dirEntries(t, h.dir) != 1 {
		t.Fatal("no spill file")
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if dirEntries(t, h.dir) != 0 {
		t.Fatal("spill file not removed")
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSpillFailure(t *testing.T) {
	fail := errors.New("disk full")
	r := bufio.NewReader(strings.NewReader("A1 APPEND INBOX {10+}\r\n0123456789\r\nA2 NOOP\r\n"))
	d := NewDecoder(r, Limits{SpillOver: 4}, nil, func() (*os.File, error) { return nil, fail })
	_, err := d.ReadCommand()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Fatal || pe.Code != "UNAVAILABLE" || pe.Tag != "A1" || !errors.Is(err, fail) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(pe.Msg, "disk full") {
		t.Errorf("internal error leaks into Msg: %q", pe.Msg)
	}
	cmd, err := d.ReadCommand()
	if err != nil || cmd.Name != "NOOP" {
		t.Fatalf("after spill failure: %v %v", cmd, err)
	}
}

func TestContError(t *testing.T) {
	fail := errors.New("write failed")
	r := bufio.NewReader(strings.NewReader("A1 LOGIN {4}\r\nuser {4}\r\npass\r\n"))
	d := NewDecoder(r, Limits{}, func() error { return fail }, nil)
	if _, err := d.ReadCommand(); err != fail {
		t.Fatalf("got %v, want the cont error", err)
	}
}

func TestReadLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("DONE\r\nabc\n"+strings.Repeat("z", 50)+"\r\nnext\r\n\r\n"), 16)
	d := NewDecoder(r, Limits{MaxLine: 20}, nil, nil)
	for _, want := range []string{"DONE", "abc", "!LIMIT", "next", ""} {
		got, err := d.ReadLine()
		var pe *ProtocolError
		if errors.As(err, &pe) {
			got = "!" + pe.Code
			if pe.Fatal {
				t.Errorf("long line is fatal")
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if _, err := d.ReadLine(); err != io.EOF {
		t.Errorf("at end: %v", err)
	}
}

func TestLimitsDefaultsAndSetLimits(t *testing.T) {
	d := NewDecoder(bufio.NewReader(strings.NewReader("")), Limits{}, nil, nil)
	want := Limits{MaxLine: 64 << 10, MaxLiteral: 50 << 20, MaxCommandBytes: 200 << 20, MaxDepth: 16, MaxValues: 10000, SpillOver: 64 << 10}
	if d.Limits() != want {
		t.Errorf("defaults: %+v", d.Limits())
	}
	h := newHarness(t, Limits{MaxLiteral: 3}, s0("A1 X {4}\r\nA2 X {4}\r\n"), step{1, "abcd\r\n"})
	if _, err := h.dec.ReadCommand(); err == nil {
		t.Fatal("literal over the limit accepted")
	}
	h.dec.SetLimits(Limits{MaxLiteral: 4})
	cmd, err := h.dec.ReadCommand()
	if err != nil || cmd.Args[0].String() != "abcd" {
		t.Fatalf("after SetLimits: %v %v", cmd, err)
	}
}

func TestProtocolErrorText(t *testing.T) {
	e := &ProtocolError{Tag: "A1", Code: "TOOBIG", Msg: "too big"}
	if e.Error() != "imap: [TOOBIG] too big" {
		t.Errorf("Error() = %q", e.Error())
	}
	if (&ProtocolError{Msg: "bad"}).Error() != "imap: bad" {
		t.Error("Error() without code")
	}
}
