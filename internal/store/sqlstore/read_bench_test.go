package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// Benchmarks of the read path IMAP uses (SELECT, FETCH):
//
//	go test -run '^$' -bench 'Read' ./internal/store/sqlstore

// readBenchMessage is a 3 KiB mailing-list message.
func readBenchMessage(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Date: Tue, 3 Mar 2026 10:%02d:00 +0000\r\nFrom: \"Sender %d\" <sender%d@example.test>\r\n", i%60, i, i)
	fmt.Fprintf(&b, "To: Alice <alice@example.test>, team@example.test\r\nSubject: Weekly report %d\r\n", i)
	fmt.Fprintf(&b, "Message-ID: <msg%d@example.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", i)
	for b.Len() < 3000 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\r\n")
	}
	return b.String()
}

// readBenchStore returns a store with n messages in user@example.com's
// INBOX (a third of them \Seen) and the INBOX's ID.
func readBenchStore(b *testing.B, n int) (*Store, int64) {
	s := openTest(b, b.TempDir(), Options{NoSync: true, NoIndexer: true})
	a := setup(b, s)
	ctx := context.Background()
	for done := 0; done < n; {
		var ds []*store.Delivery
		for ; done < n && len(ds) < 500; done++ {
			var flags []string
			if done%3 == 0 {
				flags = []string{store.FlagSeen}
			}
			ds = append(ds, &store.Delivery{Blob: strings.NewReader(readBenchMessage(done)),
				Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX", Flags: flags,
					Prefix: []byte("Delivered-To: user@example.com\r\n")}}})
		}
		if _, err := s.DeliverBatch(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	return s, mustInbox(b, s, a.ID)
}

func benchReadMessages(b *testing.B, withStructure bool) {
	s, inbox := readBenchStore(b, 10000)
	ctx := context.Background()
	defer reportCPU(b)()
	for b.Loop() {
		msgs, err := s.Messages(ctx, inbox, 1, withStructure)
		if err != nil || len(msgs) != 10000 {
			b.Fatal(len(msgs), err)
		}
	}
}

// BenchmarkReadScan10k: the rows of 10,000 messages read from the table
// (the list cache emptied before each call).
func BenchmarkReadScan10k(b *testing.B) {
	s, inbox := readBenchStore(b, 10000)
	ctx := context.Background()
	defer reportCPU(b)()
	for b.Loop() {
		s.lists.mu.Lock()
		s.lists.boxes, s.lists.bytes = nil, 0
		s.lists.mu.Unlock()
		msgs, err := s.Messages(ctx, inbox, 1, false)
		if err != nil || len(msgs) != 10000 {
			b.Fatal(len(msgs), err)
		}
	}
}

// BenchmarkReadMessages10k: the rows of 10,000 messages (SELECT), from
// the list cache after the first call.
func BenchmarkReadMessages10k(b *testing.B) { benchReadMessages(b, false) }

// BenchmarkReadMessagesStructure10k: the rows with their structure (FETCH ENVELOPE).
func BenchmarkReadMessagesStructure10k(b *testing.B) { benchReadMessages(b, true) }

// BenchmarkReadOpenMessage1k: OpenMessage and a full read of 1,000 messages.
func BenchmarkReadOpenMessage1k(b *testing.B) {
	s, inbox := readBenchStore(b, 1000)
	ctx := context.Background()
	buf := make([]byte, 8192)
	defer reportCPU(b)()
	for b.Loop() {
		for uid := uint32(1); uid <= 1000; uid++ {
			r, err := s.OpenMessage(ctx, inbox, uid)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadAt(buf[:r.Size()], 0); err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	}
}

// reportCPU reports the process's CPU time (user + system) per operation
// from now until the returned function runs: steadier than the wall
// time on a shared machine.
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
