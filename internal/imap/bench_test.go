package imap

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

// repeater yields the same bytes forever.
type repeater struct {
	data []byte
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.data[r.off:])
		n += k
		r.off = (r.off + k) % len(r.data)
	}
	return n, nil
}

func BenchmarkDecodeFetch(b *testing.B) {
	line := "A0042 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)]) (CHANGEDSINCE 12345)\r\n"
	d := NewDecoder(bufio.NewReader(&repeater{data: []byte(line)}), Limits{}, nil, nil)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		cmd, err := d.ReadCommand()
		if err != nil || cmd.Name != "UID FETCH" {
			b.Fatal(cmd, err)
		}
	}
}

func BenchmarkWriteFetch(b *testing.B) {
	w := NewWriter(io.Discard)
	body := strings.Repeat("This is a line of a message body.\r\n", 60)
	subject := "Re: the quarterly report (draft 3)"
	date := time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		w.Raw("* ").Number(1234).Raw(" FETCH (UID ").Number(56789).Raw(" FLAGS (").Atom(`\Seen`).SP().Atom("$Junk").
			Raw(") INTERNALDATE ").String(FormatDateTime(date)).Raw(" RFC822.SIZE ").Number(uint64(len(body))).
			Raw(" ENVELOPE (").String("Thu, 1 Feb 2024 10:00:00 +0000").SP().String(subject).
			Raw(" ((").String("Alice Example").Raw(" NIL ").String("alice").SP().String("example.org").Raw(")) NIL NIL NIL NIL NIL ").
			String("<id@example.org>").Raw(") BODY[] ").LiteralFrom(strings.NewReader(body), int64(len(body)), false).
			Close().CRLF()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
