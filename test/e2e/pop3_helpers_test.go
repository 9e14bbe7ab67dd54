package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// deliver sends one message over SMTP to user@example.test; its
// Message-ID is <subject@remote.test>. net/smtp dot-stuffs the body.
func deliver(t *testing.T, in *instance, subject, body string) {
	t.Helper()
	sendRaw(t, in.addr("smtp"), "sender@remote.test", fmt.Sprintf("From: Sender <sender@remote.test>\r\n"+
		"To: user@example.test\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s\r\n", subject, subject, body))
}

// expungeWatch is an IMAP session with INBOX selected that counts the
// EXPUNGE responses the server sends it.
type expungeWatch struct {
	c    *imapclient.Client
	mu   sync.Mutex
	seqs []uint32
}

// watchExpunges logs in over IMAPS (trusting the instance's certificate)
// and selects INBOX; it fails unless INBOX holds want messages.
func watchExpunges(t *testing.T, in *instance, want uint32) *expungeWatch {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(in.dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in tls/cert.pem")
	}
	w := &expungeWatch{}
	opts := &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: pool},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Expunge: func(seq uint32) {
			w.mu.Lock()
			w.seqs = append(w.seqs, seq)
			w.mu.Unlock()
		}},
	}
	if w.c, err = imapclient.DialTLS(in.addr("imaps"), opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.c.Close() })
	if err := w.c.Login("user@example.test", "secret-pass-1").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := w.c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != want {
		t.Fatalf("IMAP SELECT INBOX: %d messages, want %d", sel.NumMessages, want)
	}
	return w
}

// expunged sends NOOP and returns every EXPUNGE seen so far.
func (w *expungeWatch) expunged(t *testing.T) []uint32 {
	t.Helper()
	if err := w.c.Noop().Wait(); err != nil {
		t.Fatalf("IMAP NOOP: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seqs)
}

// storedInbox returns BODY.PEEK[] of every INBOX message in UID order (the
// stored bytes, which POP3 numbers 1..n in the same order).
func storedInbox(t *testing.T, in *instance) [][]byte {
	t.Helper()
	c := dialIMAPS(t, in)
	defer func() { c.Logout().Wait() }()
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("IMAP EXAMINE INBOX: %v\nserver log:\n%s", err, in.logs)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	var all imap.SeqSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		t.Fatalf("IMAP FETCH 1:* BODY.PEEK[]: %v\nserver log:\n%s", err, in.logs)
	}
	slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.FindBodySection(sec))
	}
	return out
}

// maildropFiles reads every file of the given directories (a Maildir's
// new/ and cur/, or a directory an MDA writes one file per message into)
// and returns them by Message-ID; a duplicate Message-ID fails the test.
func maildropFiles(t *testing.T, dirs ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range dirs {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			id := messageID(raw)
			if _, dup := out[id]; dup || id == "" {
				t.Fatalf("%s: duplicate or missing Message-ID %q (delivered twice?)", f.Name(), id)
			}
			out[id] = raw
		}
	}
	return out
}

// lf turns CRLF line ends into LF, as local delivery agents store mail.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ids returns the Message-IDs of subjects as deliver writes them, sorted.
func ids(subjects ...string) []string {
	var out []string
	for _, s := range subjects {
		out = append(out, "<"+s+"@remote.test>")
	}
	slices.Sort(out)
	return out
}
