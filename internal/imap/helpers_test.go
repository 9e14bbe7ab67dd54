package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// step is a part of a scripted client stream: its bytes may be read only
// after conts continuation requests were made.
type step struct {
	conts int
	data  string
}

var errEarly = errors.New("decoder read bytes before sending the continuation request")

// script is an io.Reader that gives out its steps in order and fails if a
// step is read before its continuation request was made.
type script struct {
	steps []step
	conts *int
}

func (s *script) Read(p []byte) (int, error) {
	for len(s.steps) > 0 && s.steps[0].data == "" {
		s.steps = s.steps[1:]
	}
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	if *s.conts < st.conts {
		return 0, errEarly
	}
	n := copy(p, st.data)
	st.data = st.data[n:]
	return n, nil
}

// harness decodes a script and records cont and spill calls.
type harness struct {
	t      *testing.T
	conts  int
	spills int
	dir    string
	dec    *Decoder
}

func newHarness(t *testing.T, lim Limits, steps ...step) *harness {
	h := &harness{t: t, dir: t.TempDir()}
	r := bufio.NewReaderSize(&script{steps: steps, conts: &h.conts}, 16)
	h.dec = NewDecoder(r, lim, func() error { h.conts++; return nil }, func() (*os.File, error) {
		h.spills++
		return os.CreateTemp(h.dir, "spill-*")
	})
	return h
}

// run reads commands until EOF, a fatal or a non-protocol error and
// returns one description per result.
func (h *harness) run() []string {
	var out []string
	for i := 0; i < 100; i++ {
		cmd, err := h.dec.ReadCommand()
		if err == io.EOF {
			return out
		}
		var pe *ProtocolError
		switch {
		case errors.As(err, &pe):
			out = append(out, fmt.Sprintf("BAD tag=%s code=%s fatal=%v", pe.Tag, pe.Code, pe.Fatal))
			if pe.Fatal {
				return out
			}
		case err != nil:
			return append(out, "ERR "+err.Error())
		default:
			out = append(out, describeCmd(cmd))
			if err := cmd.Close(); err != nil {
				h.t.Errorf("Close: %v", err)
			}
		}
	}
	h.t.Fatal("decoder does not stop")
	return nil
}

func describeCmd(c *Command) string {
	var b strings.Builder
	b.WriteString(c.Tag + " " + c.Name)
	for _, v := range c.Args {
		b.WriteByte(' ')
		describe(&b, v)
	}
	return b.String()
}

// describe writes v compactly: atoms as is, strings Go-quoted with a
// prefix L (literal), B (literal8) or F (spilled), lists in parentheses.
func describe(b *strings.Builder, v Value) {
	switch v.Kind {
	case KindAtom:
		b.WriteString(v.Atom)
		if v.HasSection {
			b.WriteByte('[')
			for i, s := range v.Section {
				if i > 0 {
					b.WriteByte(' ')
				}
				describe(b, s)
			}
			b.WriteByte(']')
		}
		if v.Partial != "" {
			b.WriteString("<" + v.Partial + ">")
		}
	case KindString:
		switch {
		case v.File != nil:
			data := make([]byte, v.Size)
			if _, err := v.File.ReadAt(data, 0); err != nil {
				panic(err)
			}
			b.WriteString("F" + strconv.Quote(string(data)))
			return
		case v.Binary:
			b.WriteString("B")
		case v.Literal:
			b.WriteString("L")
		}
		b.WriteString(strconv.Quote(string(v.Str)))
	case KindList:
		b.WriteByte('(')
		for i, s := range v.List {
			if i > 0 {
				b.WriteByte(' ')
			}
			describe(b, s)
		}
		b.WriteByte(')')
	default:
		b.WriteString("?")
	}
}

func dirEntries(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
