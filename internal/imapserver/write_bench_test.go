package imapserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"pillarbox/internal/store"
)

// Benchmarks of the writing commands over a real socket (the test
// store runs with NoSync: no fsync, so they measure the server's CPU
// path, not the disk). Reported as msgs/s.
//
//	go test -run '^$' -bench 'Store|Append' ./internal/imapserver

// writeMessage is a 4 KiB text message.
func writeMessage(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: \"Sender %d\" <sender%d@example.test>\r\nTo: alice@example.test\r\n", i, i)
	fmt.Fprintf(&b, "Subject: message %d\r\nMessage-ID: <w%d@example.test>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\n", i, i)
	for b.Len() < 4096-80 {
		b.WriteString("The quick brown fox jumps over the lazy dog, line after line after line.\r\n")
	}
	return b.String()
}

// wconn is a raw benchmark client.
type wconn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dialWrite(tb testing.TB, env *testEnv, sel string) *wconn {
	tb.Helper()
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	c := &wconn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	if _, err := c.br.ReadString('\n'); err != nil {
		tb.Fatal(err)
	}
	c.do(tb, "L", `LOGIN alice@example.test "correct horse"`)
	if sel != "" {
		c.do(tb, "S", "SELECT "+sel)
	}
	return c
}

// do sends "tag command" and reads up to the tagged reply, which must be OK.
func (c *wconn) do(tb testing.TB, tag, command string) {
	c.bw.WriteString(tag + " " + command + "\r\n")
	if err := c.wait(tag); err != nil {
		tb.Fatal(err)
	}
}

// wait flushes and reads up to the tagged reply of tag, which must be OK.
func (c *wconn) wait(tag string) error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return fmt.Errorf("%s", l)
			}
			return nil
		}
	}
}

// fillMailbox delivers n messages to alice's mailbox.
func fillMailbox(tb testing.TB, env *testEnv, name string, n int) {
	tb.Helper()
	var ds []*store.Delivery
	for i := range n {
		ds = append(ds, &store.Delivery{Blob: strings.NewReader(writeMessage(i)), InternalDate: fixedNow,
			Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: name}}})
	}
	if _, err := env.st.DeliverBatch(context.Background(), ds); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkStore: flags of 1,000 messages changed, as one STORE 1:1000
// (the client wants the FETCH responses) and as 1,000 STOREs of one
// message each, pipelined.
func BenchmarkStore(b *testing.B) {
	env := newEnv(b, envConfig{plaintext: true})
	fillMailbox(b, env, "INBOX", 1000)
	c := dialWrite(b, env, "INBOX")
	b.Run("range", func(b *testing.B) {
		ops := []string{"+FLAGS (\\Seen)", "-FLAGS (\\Seen)"}
		for i := 0; b.Loop(); i++ {
			c.do(b, "T", "STORE 1:1000 "+ops[i%2])
		}
		b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("each", func(b *testing.B) {
		ops := []string{"+FLAGS.SILENT (\\Flagged)", "-FLAGS.SILENT (\\Flagged)"}
		for i := 0; b.Loop(); i++ {
			for n := 1; n <= 1000; n++ {
				fmt.Fprintf(c.bw, "T%d STORE %d %s\r\n", n, n, ops[i%2])
			}
			if err := c.wait("T1000"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkAppend: 1,000 APPENDs of 4 KiB messages (LITERAL+, pipelined
// by each client), by 1 and 4 clients at once into one mailbox.
func BenchmarkAppend(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			env := newEnv(b, envConfig{plaintext: true})
			conns := make([]*wconn, clients)
			for i := range conns {
				conns[i] = dialWrite(b, env, "")
			}
			msg := writeMessage(0)
			cmd := fmt.Sprintf(" APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg)
			per := 1000 / clients
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make(chan error, clients)
				for _, c := range conns {
					wg.Go(func() {
						// Pipelined in windows of 50 commands, as a
						// client streaming a folder would.
						for n := 0; n < per; n += 50 {
							for k := n; k < min(n+50, per); k++ {
								fmt.Fprintf(c.bw, "A%d%s", k, cmd)
							}
							if err := c.wait(fmt.Sprintf("A%d", min(n+50, per)-1)); err != nil {
								errs <- err
								return
							}
						}
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(per*clients*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
