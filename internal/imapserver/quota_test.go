package imapserver

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestQuotaTranscripts replays testdata/quota/*.txt like TestTranscripts,
// with two more lines for quota scenarios:
//
//	@quota BYTES                  alice's quota (store.SetQuota)
//	@deliversize MAILBOX BYTES    deliver a message of exactly BYTES bytes to alice
func TestQuotaTranscripts(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/quota/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no quota transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			cfg, script := readScript(t, f)
			tr := &transcript{t: t, env: newEnv(t, cfg), conns: map[string]*client{}, path: f, vars: map[string]string{}}
			tr.use("1")
			for _, l := range script {
				if !quotaStep(tr, l) {
					tr.step(l)
				}
			}
		})
	}
}

// quotaStep runs the extra lines of quota transcripts; false for others.
func quotaStep(tr *transcript, l scriptLine) bool {
	t, env := tr.t, tr.env
	f := strings.Fields(l.text)
	switch l.kind {
	case "@quota":
		n, err := strconv.ParseInt(l.text, 10, 64)
		if err != nil {
			t.Fatalf("line %d: %v", l.no, err)
		}
		if err := env.st.SetQuota(context.Background(), env.alice.ID, n); err != nil {
			t.Fatal(err)
		}
	case "@deliversize":
		if len(f) != 2 {
			t.Fatalf("line %d: @deliversize MAILBOX BYTES", l.no)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("line %d: %v", l.no, err)
		}
		env.deliver(env.alice, f[0], nil, sizedMessage(n))
	default:
		return false
	}
	return true
}

// sizedMessage returns a message of exactly n bytes (n >= 64).
func sizedMessage(n int) string {
	head := "From: a@example.test\r\nSubject: sized\r\n\r\n"
	body := n - len(head) - 2
	var b strings.Builder
	b.WriteString(head)
	for body > 0 { // lines of at most 78 characters
		k := min(body, 78)
		if body-k > 0 && body-k < 3 { // leave room for a last line's CRLF
			k = body - 3
		}
		b.WriteString(strings.Repeat("x", k))
		body -= k
		if body > 0 {
			b.WriteString("\r\n")
			body -= 2
		}
	}
	b.WriteString("\r\n")
	if b.Len() != n {
		panic(fmt.Sprintf("sizedMessage(%d) made %d bytes", n, b.Len()))
	}
	return b.String()
}
