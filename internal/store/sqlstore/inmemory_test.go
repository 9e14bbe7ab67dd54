package sqlstore

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// OpenMessage keeps the driver's BLOB slices (driverBytes): reading more
// messages must not change the bytes of one already opened, and Bytes
// (store.InMemory) gives exactly what Read gives, for inline blobs only.
func TestDriverBytesNotReused(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, NoIndexer: true})
	acct := setup(t, s)
	ctx := context.Background()
	var want []string
	for i := range 20 {
		body := msg(strings.Repeat(strconv.Itoa(i), 50+i))
		res, err := s.Deliver(ctx, &store.Delivery{Blob: strings.NewReader(body), InternalDate: time.Now(),
			Local: []store.LocalRecipient{{AccountID: acct.ID, Prefix: []byte("X-Prefix: " + strconv.Itoa(i) + "\r\n")}}})
		must(t, err)
		_ = res
		want = append(want, "X-Prefix: "+strconv.Itoa(i)+"\r\n"+body)
	}
	big, err := s.Deliver(ctx, &store.Delivery{Blob: strings.NewReader(bigMsg("big")), InternalDate: time.Now(),
		Local: []store.LocalRecipient{{AccountID: acct.ID}}})
	must(t, err)
	mb := big.Local[0].MailboxID

	var held [][][]byte
	for i := range want {
		r, err := s.OpenMessage(ctx, mb, uint32(i+1))
		must(t, err)
		defer r.Close()
		im, ok := r.(store.InMemory)
		if !ok || im.Bytes() == nil {
			t.Fatalf("message %d: inline blob without Bytes", i+1)
		}
		held = append(held, im.Bytes())
		b, err := io.ReadAll(r)
		must(t, err)
		if string(b) != want[i] {
			t.Fatalf("message %d: Read gives %q", i+1, b)
		}
	}
	for i, parts := range held {
		if got := string(bytes.Join(parts, nil)); got != want[i] {
			t.Fatalf("message %d changed after later reads: %q", i+1, got)
		}
	}
	r, err := s.OpenMessage(ctx, mb, big.Local[0].UID)
	must(t, err)
	defer r.Close()
	if r.(store.InMemory).Bytes() != nil {
		t.Fatal("a blob file claims to be in memory")
	}
}
