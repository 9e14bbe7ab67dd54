package pop3server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// benchMessage is a message of about size bytes with CRLF lines, some
// starting with '.'.
func benchMessage(rnd *rand.Rand, size int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nTo: alice@example.test\r\nSubject: bench\r\n\r\n")
	for b.Len() < size {
		if rnd.IntN(20) == 0 {
			b.WriteString(".")
		}
		n := 20 + rnd.IntN(70)
		for range n {
			b.WriteByte(byte('a' + rnd.IntN(26)))
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// BenchmarkRETR downloads every message of a maildrop with one RETR at a
// time over a real socket: ns/op is per message, client included.
func BenchmarkRETR(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			env := newEnv(b, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
			rnd := rand.New(rand.NewPCG(1, 2))
			const n = 500
			var ds []*store.Delivery
			for range n {
				ds = append(ds, &store.Delivery{Blob: strings.NewReader(benchMessage(rnd, size)), InternalDate: time.Now(),
					Local: []store.LocalRecipient{{AccountID: env.alice.ID}}})
			}
			if _, err := env.st.DeliverBatch(context.Background(), ds); err != nil {
				b.Fatal(err)
			}
			nc, err := net.Dial("tcp", env.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReaderSize(nc, 64<<10)
			io.WriteString(nc, "USER "+alice+"\r\nPASS "+password+"\r\n")
			for range 3 {
				br.ReadString('\n')
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				fmt.Fprintf(nc, "RETR %d\r\n", i%n+1)
				for {
					l, err := br.ReadSlice('\n')
					if err != nil && err != bufio.ErrBufferFull {
						b.Fatal(err)
					}
					if len(l) == 3 && l[0] == '.' {
						break
					}
				}
			}
		})
	}
}
