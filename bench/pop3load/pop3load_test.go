package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"pillarbox/bench/internal/loadutil"
	"strings"
	"testing"
	"time"
)

func TestGenDeterministicCRLF(t *testing.T) {
	for i := 0; i < 400; i++ {
		a, b := genMessage(7, i), genMessage(7, i)
		if !bytes.Equal(a, b) {
			t.Fatalf("message %d differs between calls", i)
		}
		if bytes.Count(a, []byte("\n")) != bytes.Count(a, []byte("\r\n")) {
			t.Fatalf("message %d has a bare LF", i)
		}
		if !bytes.HasSuffix(a, []byte("\r\n")) {
			t.Fatalf("message %d does not end in CRLF", i)
		}
		cl := classOf(i)
		// Text is written until the target is passed (by < one line),
		// base64 up to it (the text part may overshoot a small target).
		if len(a) < cl.min-200 || len(a) > cl.max+4096 {
			t.Errorf("message %d (%s): %d bytes", i, cl.name, len(a))
		}
		if i%10 == 0 && !bytes.Contains(a, []byte("\r\n.\r\n")) {
			t.Errorf("message %d has no lone '.' line", i)
		}
	}
	if bytes.Equal(genMessage(7, 1), genMessage(8, 1)) {
		t.Error("seed does not change the message")
	}
}

// fakeServer is a tiny POP3 server over a real socket serving msgs;
// stuff=false makes it skip dot-stuffing (a server bug the driver must
// catch).
func fakeServer(t *testing.T, msgs [][]byte, stuff bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(nc, msgs, stuff)
		}
	}()
	return ln.Addr().String()
}

func serveFake(nc net.Conn, msgs [][]byte, stuff bool) {
	defer nc.Close()
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	fmt.Fprint(w, "+OK fake\r\n")
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	for {
		w.Flush()
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "CAPA":
			fmt.Fprint(w, "+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		case "USER", "PASS":
			fmt.Fprint(w, "+OK\r\n")
		case "STAT":
			fmt.Fprintf(w, "+OK %d %d\r\n", len(msgs), total)
		case "LIST", "UIDL":
			fmt.Fprint(w, "+OK\r\n")
			for k, m := range msgs {
				if f[0] == "LIST" {
					fmt.Fprintf(w, "%d %d\r\n", k+1, len(m))
				} else {
					fmt.Fprintf(w, "%d id-%d\r\n", k+1, k)
				}
			}
			fmt.Fprint(w, ".\r\n")
		case "RETR":
			var k int
			fmt.Sscan(f[1], &k)
			fmt.Fprint(w, "+OK\r\n")
			m := msgs[k-1]
			if stuff {
				m = bytes.ReplaceAll(m, []byte("\r\n."), []byte("\r\n.."))
				if m[0] == '.' {
					m = append([]byte("."), m...)
				}
			}
			w.Write(m)
			fmt.Fprint(w, ".\r\n")
		case "QUIT":
			fmt.Fprint(w, "+OK bye\r\n")
			w.Flush()
			return
		default:
			fmt.Fprint(w, "-ERR unknown\r\n")
		}
	}
}

func runFake(t *testing.T, msgs [][]byte, stuff bool, window int) result {
	t.Helper()
	var out bytes.Buffer
	rc := runConfig{
		Target: loadutil.Target{
			Dial:  loadutil.DialOpts{Addr: fakeServer(t, msgs, stuff), TLS: "plain", Timeout: 10 * time.Second, Password: "pw"},
			Label: "fake", Users: []string{"a", "b", "c"},
		},
		msgs: len(msgs), seed: 3, rounds: 2, window: window, out: &out,
	}
	if err := rc.run(); err != nil {
		t.Fatal(err)
	}
	var last result
	dec := json.NewDecoder(&out)
	for k := 0; ; k++ {
		var r result
		if err := dec.Decode(&r); err != nil {
			if k != 2 {
				t.Fatalf("%d results, want 2 (%v)", k, err)
			}
			return last
		}
		if r.First != (k == 0) || r.Round != k+1 {
			t.Errorf("round %d: first=%v round=%d", k, r.First, r.Round)
		}
		last = r
	}
}

func genSet(n int) [][]byte {
	var msgs [][]byte
	for i := 0; i < n; i++ {
		msgs = append(msgs, genMessage(3, i))
	}
	return msgs
}

func TestRunAgainstFake(t *testing.T) {
	msgs := genSet(60) // includes a 50-200 KiB message (index 7) and lone "." lines
	var total int64
	for _, m := range msgs {
		total += int64(len(m))
	}
	for _, window := range []int{0, 8} {
		r := runFake(t, msgs, true, window)
		if len(r.Errors) > 0 || len(r.Mismatch) > 0 {
			t.Fatalf("window %d: errors %v, mismatches %v", window, r.Errors, r.Mismatch)
		}
		if r.Retrs != 3*len(msgs) || r.Bytes != 3*total || r.WireBytes <= r.Bytes || r.Conc != 3 {
			t.Errorf("window %d: %+v", window, r)
		}
		if (window > 0) != (r.Mode == "pipelined") {
			t.Errorf("window %d: mode %s", window, r.Mode)
		}
	}
}

// A server that does not dot-stuff ends the message early at a lone "."
// line: the driver reports wrong sizes, not success.
func TestRunDetectsMissingStuffing(t *testing.T) {
	r := runFake(t, genSet(11), false, 0)
	if len(r.Mismatch) == 0 && len(r.Errors) == 0 {
		t.Fatal("no mismatch reported for a server that does not dot-stuff")
	}
}

// body handles lines longer than the read buffer and stuffed dots at
// the start of a line only.
func TestBodyLongLines(t *testing.T) {
	long := strings.Repeat("x", 150<<10)
	msg := "A: b\r\n\r\n.." + long + "\r\n" + long + ".x\r\n...\r\n"
	want := []byte("A: b\r\n\r\n." + long + "\r\n" + long + ".x\r\n..\r\n")
	c := &client{&loadutil.Conn{R: bufio.NewReaderSize(strings.NewReader(msg+".\r\n"), 64<<10)}}
	n, crc, err := c.body()
	if err != nil {
		t.Fatal(err)
	}
	if d := digestOf(want); n != int64(d.size) || crc != d.crc {
		t.Errorf("got %d octets crc %x, want %d %x", n, crc, d.size, d.crc)
	}
}
