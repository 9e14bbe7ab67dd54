package app

import (
	"bufio"

	"fmt"
	"net"
	"pillarbox/internal/config"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkMXDeliver measures durable MX deliveries over loopback: a new
// connection per message (as smtp-source and most inbound mail), 20
// concurrent clients, 4 KiB messages, fsync on. Reports msgs/s. The
// client shares the CPU with the server: compare runs, not absolutes.
func BenchmarkMXDeliver(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			a := testAppWith(b, nil, func(c *config.Config) { c.Limits.ConnectionsPerIP = 100 })
			addr := a.addr(b, ListenSMTP)
			body := benchBody(size)
			var n atomic.Int64
			b.SetParallelism(10) // 20 clients on 2 cores
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sendRaw(addr, body, n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func benchBody(size int) string {
	var sb strings.Builder
	sb.WriteString("From: bench@remote.test\r\nTo: alice@example.test\r\nSubject: bench\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for sb.Len() < size {
		sb.WriteString(line)
	}
	return sb.String()
}

// sendRaw runs one SMTP session that delivers one message.
func sendRaw(addr, body string, id int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, code) {
				return fmt.Errorf("got %q, want %s", line, code)
			}
			if len(line) > 3 && line[3] == ' ' {
				return nil
			}
		}
	}
	steps := []struct{ send, want string }{
		{"", "220"},
		{"EHLO bench.test\r\n", "250"},
		{"MAIL FROM:<bench@remote.test>\r\n", "250"},
		{"RCPT TO:<alice@example.test>\r\n", "250"},
		{"DATA\r\n", "354"},
		{body + ".\r\n", "250"},
		{"QUIT\r\n", "221"},
	}
	for _, s := range steps {
		if s.send != "" {
			if _, err := c.Write([]byte(s.send)); err != nil {
				return err
			}
		}
		if err := expect(s.want); err != nil {
			return fmt.Errorf("message %d: %w", id, err)
		}
	}
	return nil
}
