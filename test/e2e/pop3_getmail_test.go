package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGetmail runs getmail6, a real download client, against the real
// binary over POP3S (SimplePOP3SSLRetriever, the instance's certificate
// checked) into a Maildir. Keep mode (delete = false, read_all = false:
// UIDLs already seen are skipped): a first run delivers every message, a
// run after new mail delivers only the new one. Delete mode (delete =
// true, read_all = false): the new message is delivered, every message is
// deleted (the ones seen before without being downloaded again), the
// maildrop is empty, and an IMAP session with INBOX selected sees each
// EXPUNGE. getmail's summary line counts the messages and the octets LIST
// gave; each delivered file is the stored message with LF line ends.
func TestGetmail(t *testing.T) {
	bin := requireTool(t, "getmail")
	in := newInstance(t, "")
	in.start()
	home := t.TempDir()
	state := filepath.Join(home, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// getmail refuses to deliver as root; as root (CI), its Maildir
	// destination delivers as nobody, which owns the Maildirs and may walk
	// down to them.
	asUser := ""
	if os.Geteuid() == 0 {
		asUser = "user = nobody"
		for d := home; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	// run runs getmail into a new Maildir and returns getmail's output.
	run := func(what, maildir string, deleteMode bool) string {
		t.Helper()
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(maildir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if asUser != "" {
			if out, err := exec.Command("chown", "-R", "nobody", maildir).CombinedOutput(); err != nil {
				t.Fatalf("chown: %v %s", err, out)
			}
		}
		rc := filepath.Join(home, "getmailrc")
		conf := fmt.Sprintf(`[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = %d
username = user@example.test
password = secret-pass-1
ca_certs = %s
timeout = 30

[destination]
type = Maildir
path = %s/
%s

[options]
verbose = 1
read_all = false
delete = %v
delivered_to = false
received = false
message_log_syslog = false
`, in.ports["pop3s"], filepath.Join(in.dir, "tls", "cert.pem"), maildir, asUser, deleteMode)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--rcfile", rc, "--getmaildir", state)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("getmail (%s): %v\n%s\nserver log:\n%s", what, err, out, in.logs.String())
		}
		return string(out)
	}
	byID := func() map[string][]byte {
		out := map[string][]byte{}
		for _, m := range storedInbox(t, in) {
			out[messageID(m)] = m
		}
		return out
	}
	// check fails unless the Maildir holds exactly the messages of
	// subjects, each the stored bytes, and getmail's summary line counts
	// them (skipped: the messages seen in an earlier run).
	check := func(what, maildir, out string, stored map[string][]byte, skipped int, subjects ...string) {
		t.Helper()
		got := maildropFiles(t, filepath.Join(maildir, "new"), filepath.Join(maildir, "cur"))
		if want := ids(subjects...); !slices.Equal(sortedKeys(got), want) {
			t.Fatalf("%s: delivered %v, want %v\ngetmail said:\n%s", what, sortedKeys(got), want, out)
		}
		size := 0
		for id, raw := range got {
			size += len(stored[id])
			if want := lf(stored[id]); !bytes.Equal(raw, want) {
				t.Errorf("%s: %s delivered as %q, stored as %q", what, id, raw, want)
			}
		}
		summary := fmt.Sprintf("  %d messages (%d bytes) retrieved, %d skipped\n", len(got), size, skipped)
		if !strings.Contains(out, summary) {
			t.Errorf("%s: getmail did not say %q:\n%s", what, summary, out)
		}
	}

	deliver(t, in, "gm-one", "the quick brown fox")
	deliver(t, in, "gm-dots", ".leading dot\r\n.\r\n..two\r\nend")
	md1 := filepath.Join(home, "Maildir1")
	out := run("keep, first run", md1, false)
	stored := byID()
	check("keep, first run", md1, out, stored, 0, "gm-one", "gm-dots")

	deliver(t, in, "gm-three", "jumps over the lazy dog")
	md2 := filepath.Join(home, "Maildir2")
	out = run("keep, second run", md2, false)
	stored = byID()
	check("keep, second run", md2, out, stored, 2, "gm-three")
	if len(stored) != 3 {
		t.Fatalf("the maildrop holds %d messages after keep runs, want 3", len(stored))
	}

	deliver(t, in, "gm-four", "a fourth")
	stored = byID()
	w := watchExpunges(t, in, 4)
	md3 := filepath.Join(home, "Maildir3")
	out = run("delete", md3, true)
	check("delete", md3, out, stored, 3, "gm-four")
	if got := w.expunged(t); len(got) != 4 {
		t.Errorf("IMAP saw EXPUNGE %v after getmail's run in delete mode, want 4 of them", got)
	}
	if left := storedInbox(t, in); len(left) != 0 {
		t.Errorf("INBOX holds %d messages after getmail's run in delete mode, want 0", len(left))
	}
	md4 := filepath.Join(home, "Maildir4")
	out = run("delete, empty maildrop", md4, true)
	check("delete, empty maildrop", md4, out, stored, 0)
}
