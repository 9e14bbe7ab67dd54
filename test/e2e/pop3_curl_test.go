package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestCurlPOP3 drives the real binary with curl's POP3 client (libcurl's
// own implementation) over POP3S and over the plain port with STLS: LIST
// (sizes equal the bytes RETR gives), RETR by URL (the stored bytes, a
// body with lines starting with "." included), UIDL and TOP with -X,
// DELE with -X (gone for the next session, and for IMAP), SASL PLAIN and
// LOGIN; a wrong password and a login without TLS are refused.
func TestCurlPOP3(t *testing.T) {
	curlBin := requireTool(t, "curl")
	in := newInstance(t, "")
	in.start()
	deliver(t, in, "curl-one", "the quick brown fox")
	deliver(t, in, "curl-dots", ".leading dot\r\n.\r\n..two\r\nend")
	deliver(t, in, "curl-three", "jumps over the lazy dog")
	stored := storedInbox(t, in)
	if len(stored) != 3 {
		t.Fatalf("INBOX holds %d messages, want 3", len(stored))
	}

	cr := newCurl(t, in, curlBin, "-k")
	curl, ok := cr.run, cr.ok
	pop3s := "pop3s://" + in.addr("pop3s")
	pop3 := "pop3://" + in.addr("pop3")

	// LIST: one "n size" line per message, sizes those of the stored bytes.
	var list string
	for i, m := range stored {
		list += fmt.Sprintf("%d %d\r\n", i+1, len(m))
	}
	if got := ok(pop3s + "/"); got != list {
		t.Errorf("LIST over POP3S: %q, want %q", got, list)
	}
	if got := ok("--ssl-reqd", "--login-options", "AUTH=LOGIN", pop3+"/"); got != list {
		t.Errorf("LIST over STLS with AUTH LOGIN: %q, want %q", got, list)
	}
	// RETR by URL: exactly the stored bytes (curl undoes the dot-stuffing).
	for i, m := range stored {
		if got := ok(fmt.Sprintf("%s/%d", pop3s, i+1)); got != string(m) {
			t.Errorf("RETR %d: %q, want %q", i+1, got, m)
		}
	}
	if got := ok("--ssl-reqd", "--login-options", "AUTH=PLAIN", pop3+"/2"); got != string(stored[1]) {
		t.Errorf("RETR 2 over STLS with AUTH PLAIN: %q, want %q", got, stored[1])
	}
	// TOP 2 2: the header, the blank line, two body lines.
	head, body, _ := strings.Cut(string(stored[1]), "\r\n\r\n")
	if got, want := ok("-X", "TOP 2 2", pop3s+"/"), head+"\r\n\r\n.leading dot\r\n.\r\n"; got != want {
		t.Errorf("TOP 2 2: %q, want %q", got, want)
	}
	if !strings.HasPrefix(body, ".leading dot\r\n.\r\n..two\r\n") {
		t.Fatalf("stored body %q", body)
	}
	// UIDL: stable between sessions, one unique id per message.
	uidl := ok("-X", "UIDL", pop3s+"/")
	var uids []string
	for i, l := range strings.Split(strings.TrimSuffix(uidl, "\r\n"), "\r\n") {
		n, uid, found := strings.Cut(l, " ")
		if !found || n != fmt.Sprint(i+1) || uid == "" || slices.Contains(uids, uid) {
			t.Fatalf("UIDL line %q in %q", l, uidl)
		}
		uids = append(uids, uid)
	}
	if len(uids) != 3 {
		t.Fatalf("UIDL: %q", uidl)
	}
	if again := ok("--ssl-reqd", pop3+"/", "-X", "UIDL"); again != uidl {
		t.Errorf("UIDL in a second session: %q, first %q", again, uidl)
	}

	// DELE 1 (no transfer: -I); curl's QUIT expunges it.
	w := watchExpunges(t, in, 3)
	ok("-X", "DELE 1", "-I", pop3s+"/")
	if got := w.expunged(t); !slices.Equal(got, []uint32{1}) {
		t.Errorf("IMAP saw EXPUNGE %v after curl's DELE 1, want [1]", got)
	}
	if got, want := ok(pop3s+"/"), fmt.Sprintf("1 %d\r\n2 %d\r\n", len(stored[1]), len(stored[2])); got != want {
		t.Errorf("LIST after DELE 1: %q, want %q", got, want)
	}
	if got, want := ok("-X", "UIDL", pop3s+"/"), fmt.Sprintf("1 %s\r\n2 %s\r\n", uids[1], uids[2]); got != want {
		t.Errorf("UIDL after DELE 1: %q, want %q", got, want)
	}
	if got := ok(pop3s + "/1"); got != string(stored[1]) {
		t.Errorf("RETR 1 after DELE 1: %q, want %q", got, stored[1])
	}

	// Refusals: a wrong password, a login without TLS (no USER or SASL in
	// CAPA before STLS: curl finds no way to log in).
	if out, code := curl("--user", "user@example.test:wrong", pop3s+"/"); code != 67 {
		t.Errorf("wrong password: exit %d (%s), want 67 (login denied)", code, out)
	}
	if out, code := curl(pop3 + "/"); code != 67 {
		t.Errorf("login without TLS: exit %d (%s), want 67 (login denied)", code, out)
	}
	if got := len(storedInbox(t, in)); got != 2 {
		t.Errorf("INBOX holds %d messages at the end, want 2", got)
	}
}
