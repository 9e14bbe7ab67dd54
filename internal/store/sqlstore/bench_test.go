package sqlstore

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"pillarbox/internal/store"
)

// message4K is a 4 KiB message.
var message4K = func() []byte {
	b := []byte("From: a@example.org\r\nTo: user@example.com\r\nSubject: bench\r\n\r\n")
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n")
	for len(b)+len(line) <= 4096 {
		b = append(b, line...)
	}
	return append(b, bytes.Repeat([]byte("x"), 4096-len(b))...)
}()

func benchDeliver(b *testing.B, parallel bool) {
	s := openTest(b, b.TempDir(), Options{}) // fsync on
	a := setup(b, s)
	ctx := context.Background()
	one := func() {
		_, err := s.Deliver(ctx, &store.Delivery{
			Blob:  bytes.NewReader(message4K),
			Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte("Delivered-To: user@example.com\r\n")}},
		})
		if err != nil {
			b.Error(err)
		}
	}
	b.SetBytes(int64(len(message4K)))
	b.ResetTimer()
	if parallel {
		// ~20 concurrent deliveries (SetParallelism multiplies GOMAXPROCS).
		b.SetParallelism(max(1, 20/maxProcs()))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for b.Loop() {
			one()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if n := s.statBatches.Load(); n > 0 {
		b.ReportMetric(float64(s.statOps.Load())/float64(n), "ops/batch")
		b.ReportMetric(float64(s.statSync.Load())/float64(n)/1e3, "µs-sync/batch")
		b.ReportMetric(float64(s.statTx.Load())/float64(n)/1e3, "µs-tx/batch")
	}
}

// BenchmarkDeliverParallel: 4 KiB messages from ~20 goroutines, fsync on.
func BenchmarkDeliverParallel(b *testing.B) { benchDeliver(b, true) }

// BenchmarkDeliverSerial: 4 KiB messages one at a time, fsync on.
func BenchmarkDeliverSerial(b *testing.B) { benchDeliver(b, false) }

func maxProcs() int { return runtime.GOMAXPROCS(0) }
