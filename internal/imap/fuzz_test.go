package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"A1 NOOP\r\n",
		"A1 LOGIN {4}\r\nuser {4+}\r\npass\r\n",
		"A1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n",
		"A1 APPEND INBOX (\\Seen) \" 1-Feb-2024 10:00:00 +0000\" ~{20+}\r\n0123456789\x00123456789\r\n",
		"A1 X ) {3+}\r\nabc {2}\r\nA2 NOOP\r\n",
		"A1 X {200}\r\nA2 X {200+}\r\n",
		"A1 SEARCH CHARSET UTF-8 SUBJECT \"a\\\"b\" (OR 1 2)\n\r\n",
		"A1 X " + strings.Repeat("(", 10) + "\r\n",
		"A1 X " + strings.Repeat("y", 100) + " {3+}\r\nabc\r\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir() // one per fuzz worker process; emptied by every run
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.RemoveAll(dir); err != nil { // left over by an earlier failing run
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		lim := Limits{MaxLine: 64, MaxLiteral: 100, MaxCommandBytes: 150, MaxDepth: 4, MaxValues: 20, SpillOver: 8}
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, 16)
		consumed := func() int64 { return cr.n - int64(br.Buffered()) }
		d := NewDecoder(br, lim, func() error { return nil }, func() (*os.File, error) { return os.CreateTemp(dir, "s") })
		for {
			before := consumed()
			cmd, err := d.ReadCommand()
			if consumed() == before && err != io.EOF {
				t.Fatalf("no progress at byte %d: %v", before, err)
			}
			var pe *ProtocolError
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				if n := dirEntries(t, dir); n != 0 {
					t.Fatalf("%d spill files left", n)
				}
				return
			case errors.As(err, &pe):
				if pe.Msg == "" || (pe.Tag != "" && !isTag(pe.Tag)) {
					t.Fatalf("bad error %#v", pe)
				}
				if pe.Fatal {
					return
				}
				continue
			case err != nil:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if !isTag(cmd.Tag) || cmd.Name == "" || cmd.Name != strings.ToUpper(cmd.Name) {
				t.Fatalf("bad command %q %q", cmd.Tag, cmd.Name)
			}
			values, mem := 0, 0
			checkValues(t, cmd.Args, lim, 0, &values, &mem)
			if values > lim.MaxValues || mem > lim.MaxLine+memFactor*lim.SpillOver {
				t.Fatalf("bounds: %d values, %d bytes in memory", values, mem)
			}
			if err := cmd.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func isTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTagChar(s[i]) {
			return false
		}
	}
	return true
}

func checkValues(t *testing.T, vs []Value, lim Limits, depth int, values, mem *int) {
	if depth > lim.MaxDepth {
		t.Fatalf("depth %d", depth)
	}
	for _, v := range vs {
		*values++
		switch v.Kind {
		case KindAtom:
			if v.Atom == "" || strings.ContainsAny(v.Atom, " ()\"[\r\n\x00") {
				t.Fatalf("bad atom %q", v.Atom)
			}
			if v.HasSection {
				checkValues(t, v.Section, lim, depth+1, values, mem)
			}
		case KindString:
			*mem += len(v.Str)
			if v.File != nil && v.Str != nil || v.File == nil && int64(len(v.Str)) != v.Size {
				t.Fatalf("bad string %+v", v)
			}
			if v.Literal && v.File == nil && v.Size > int64(lim.SpillOver) {
				t.Fatalf("literal of %d bytes held in memory", v.Size)
			}
			if !v.Literal && bytes.ContainsAny(v.Str, "\r\n\x00") {
				t.Fatalf("bad quoted %q", v.Str)
			}
		case KindList:
			checkValues(t, v.List, lim, depth+1, values, mem)
		default:
			t.Fatalf("bad kind %d", v.Kind)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "&ZeVnLIqe-", "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "&-", "&AOk-&-", "&2D3eAA-",
		"日本語", "a&b", "&AOk-&AOk-", "&AOl-", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := DecodeMUTF7(s); err == nil {
			if enc := EncodeMUTF7(dec); enc != s {
				t.Fatalf("DecodeMUTF7(%q) = %q, encodes back to %q", s, dec, enc)
			}
		}
		enc := EncodeMUTF7(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("EncodeMUTF7(%q) = %q: not printable ASCII", s, enc)
			}
		}
		if utf8.ValidString(s) {
			if dec, err := DecodeMUTF7(enc); err != nil || dec != s {
				t.Fatalf("EncodeMUTF7(%q) = %q decodes to %q, %v", s, enc, dec, err)
			}
		}
	})
}

func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:3", "3:1", "*", "1:*", "*:4", "2,4:7,9,12:*", "$", "4294967295", "0", "1,,2"} {
		f.Add(s, uint32(5), uint32(3))
	}
	f.Fuzz(func(t *testing.T, s string, star, n uint32) {
		set, err := ParseSeqSet(s)
		if err != nil {
			return
		}
		for _, r := range set.Ranges {
			if r.Start == 0 && r.Stop != 0 || r.Stop != 0 && r.Start > r.Stop {
				t.Fatalf("%q: range %+v not normalised", s, r)
			}
		}
		again, err := ParseSeqSet(set.String())
		if err != nil || !slices.Equal(again.Ranges, set.Ranges) || again.Dollar != set.Dollar {
			t.Fatalf("%q -> %q -> %+v, %v", s, set.String(), again, err)
		}
		if set.Contains(n, star) != again.Contains(n, star) {
			t.Fatal("Contains differs after a round trip")
		}
		if !set.Dollar && star > 0 && !set.Contains(0, star) && set.Dynamic() {
			t.Fatalf("%q with * does not contain *", s)
		}
	})
}
