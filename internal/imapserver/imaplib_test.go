package imapserver

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestImaplibWrite runs testdata/imaplib_write.py (Python's imaplib, an
// independent client) against the server: APPEND, STORE, COPY, UID MOVE,
// EXPUNGE, GETQUOTAROOT. Skipped when python3 is missing.
func TestImaplibWrite(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	env := newEnv(t, envConfig{plaintext: true})
	host, port, _ := net.SplitHostPort(env.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/imaplib_write.py", host, port, alice, password).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "done\n") {
		t.Fatalf("imaplib script: %v\n%s", err, out)
	}
	for name, want := range map[string]int{"INBOX": 1, "Archive": 3, "Trash": 1} {
		if got := env.mailbox(env.alice, name).Messages; got != want {
			t.Errorf("%s has %d messages, want %d", name, got, want)
		}
	}
	// The message imaplib sent with LF line ends is stored with CRLF.
	trash := env.mailbox(env.alice, "Trash")
	r, err := env.st.OpenMessage(ctx, trash.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, r.Size())
	if _, err := r.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "Subject: lf\r\n\r\nbody\r\n" {
		t.Errorf("stored %q", buf)
	}
}
