package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// benchMessage is a typical 3 KiB message (headers of a mailing-list
// mail, a text body).
func benchMessage(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <list-bounces@lists.example.test>\r\n")
	fmt.Fprintf(&b, "Received: from mx.example.test (mx.example.test [192.0.2.1])\r\n\tby mail.example.test with ESMTPS id %d; Tue, 3 Mar 2026 10:00:00 +0000\r\n", i)
	fmt.Fprintf(&b, "Date: Tue, 3 Mar 2026 10:%02d:00 +0000\r\n", i%60)
	fmt.Fprintf(&b, "From: \"Sender %d\" <sender%d@example.test>\r\n", i, i)
	fmt.Fprintf(&b, "To: Alice <alice@example.test>, team@example.test\r\n")
	fmt.Fprintf(&b, "Cc: \"Bob B.\" <bob@example.test>\r\n")
	fmt.Fprintf(&b, "Subject: Weekly report number %d about the project\r\n", i)
	fmt.Fprintf(&b, "Message-ID: <msg%d@example.test>\r\nIn-Reply-To: <msg%d@example.test>\r\n", i, i-1)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nList-Id: <team.lists.example.test>\r\n\r\n")
	for b.Len() < 3000 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again, line after line.\r\n")
	}
	return b.String()
}

// fillInbox delivers n messages to alice's INBOX in batches.
func fillInbox(tb testing.TB, env *testEnv, n int) {
	tb.Helper()
	for done := 0; done < n; {
		var ds []*store.Delivery
		for ; done < n && len(ds) < 500; done++ {
			ds = append(ds, &store.Delivery{Blob: strings.NewReader(benchMessage(done)), InternalDate: fixedNow,
				Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: "INBOX"}}})
		}
		if _, err := env.st.DeliverBatch(context.Background(), ds); err != nil {
			tb.Fatal(err)
		}
	}
	// Index now, so the background indexer does not compete with what is measured.
	if _, err := env.st.IndexPending(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// rawConn is a small benchmark client: it reads responses up to the
// tagged line, skipping literal contents.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(tb testing.TB, env *testEnv) *rawConn {
	tb.Helper()
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	c := &rawConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	c.cmd(tb, "", "")
	c.cmd(tb, "L", `LOGIN alice@example.test "correct horse"`)
	c.cmd(tb, "S", "SELECT INBOX")
	return c
}

// cmd sends "tag command" (nothing for tag "": the greeting) and reads up
// to the tagged reply; it returns the number of untagged responses.
func (c *rawConn) cmd(tb testing.TB, tag, command string) int {
	if tag != "" {
		if _, err := io.WriteString(c.nc, tag+" "+command+"\r\n"); err != nil {
			tb.Fatal(err)
		}
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	n := 0
	for {
		line, err := c.br.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			_, err = c.br.ReadSlice('\n')
		}
		if err != nil {
			tb.Fatalf("%s: %v", command, err)
		}
		if line[0] == '*' {
			n++
		}
		if i := strings.LastIndexByte(string(line), '{'); i >= 0 && strings.HasSuffix(string(line), "}\r\n") {
			size, err := strconv.ParseInt(string(line[i+1:len(line)-3]), 10, 64)
			if err == nil {
				if _, err := c.br.Discard(int(size)); err != nil {
					tb.Fatal(err)
				}
				continue // the response goes on after the literal
			}
		}
		switch {
		case tag == "" || strings.HasPrefix(string(line), tag+" OK"):
			return n
		case strings.HasPrefix(string(line), tag+" "):
			tb.Fatalf("%s: %s", command, line)
		}
	}
}

// BenchmarkFetchEnvelope10k: FETCH 1:* (FLAGS UID ENVELOPE) on a
// 10,000-message mailbox, over a real socket (the issue 3 workload).
func BenchmarkFetchEnvelope10k(b *testing.B) {
	env := newEnv(b, envConfig{plaintext: true})
	fillInbox(b, env, 10000)
	c := dialRaw(b, env)
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		if n := c.cmd(b, "F", "FETCH 1:* (FLAGS UID ENVELOPE)"); n != 10000 {
			b.Fatalf("%d responses", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/10000, "µs/msg")
}

// BenchmarkFetchEnvelope10kCold: the same FETCH, each time on a new
// connection with an empty fetch cache, as after a restart.
func BenchmarkFetchEnvelope10kCold(b *testing.B) {
	env := newEnv(b, envConfig{plaintext: true, opts: Options{MaxConnsPerIP: -1, MaxConnsPerAccount: -1}})
	fillInbox(b, env, 10000)
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		env.srv.fetch = newFetchCache(fetchCacheBytes)
		c := dialRaw(b, env)
		b.StartTimer()
		start := cpuTime()
		if n := c.cmd(b, "F", "FETCH 1:* (FLAGS UID ENVELOPE)"); n != 10000 {
			b.Fatalf("%d responses", n)
		}
		cpu += cpuTime() - start
		c.nc.Close()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

// BenchmarkSelect10k: SELECT INBOX of 10,000 messages, again and again
// on one connection.
func BenchmarkSelect10k(b *testing.B) {
	env := newEnv(b, envConfig{plaintext: true})
	fillInbox(b, env, 10000)
	c := dialRaw(b, env)
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		c.cmd(b, "S", "SELECT INBOX")
	}
}

// reportCPU reports the process's CPU time (user + system, client and
// server) per operation from now until the returned function runs:
// steadier than the wall time on a shared machine.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFetchBodies1k: UID FETCH of 1,000 whole messages
// (BODY.PEEK[]) out of 10,000.
func BenchmarkFetchBodies1k(b *testing.B) {
	env := newEnv(b, envConfig{plaintext: true})
	fillInbox(b, env, 10000)
	c := dialRaw(b, env)
	b.ResetTimer()
	defer reportCPU(b)()
	for i := 0; i < b.N; i++ {
		lo := 1 + (i%9)*1000
		if n := c.cmd(b, "F", fmt.Sprintf("UID FETCH %d:%d BODY.PEEK[]", lo, lo+999)); n != 1000 {
			b.Fatalf("%d responses", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/msg")
}
