package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCurlIMAP drives the real binary with curl's IMAP client (libcurl's
// own implementation): LIST, SELECT + UID FETCH BODY[] by URL (whole
// message, ;SECTION=, ;PARTIAL=, ;MAILINDEX=, ;UIDVALIDITY= checked
// against SELECT's answer), SEARCH by URL query, custom commands with -X
// (EXAMINE, UID SEARCH, STATUS, UID FETCH FLAGS), APPEND by upload, over
// IMAPS and STARTTLS, with AUTH=PLAIN and AUTH=LOGIN; a wrong password
// and a login without TLS are refused.
func TestCurlIMAP(t *testing.T) {
	curlBin := requireTool(t, "curl")
	in := newInstance(t, "")
	gen := filepath.Join(t.TempDir(), "import")
	msgs := genMaildirs(t, gen, map[string]int{"INBOX": 5, "Archive/2024": 2})
	in.run("import", "user@example.test", "--format", "maildir", gen)
	in.start()
	cert := filepath.Join(in.dir, "tls", "cert.pem")
	imaps := "imaps://" + in.addr("imaps")
	cr := newCurl(t, in, curlBin, "--cacert", cert)
	curl, ok := cr.run, cr.ok
	crlf := func(folder string, n int) string {
		g := msgs[fmt.Sprintf("%s <%d.%s@gen.test>", folder, n, folder)]
		return strings.ReplaceAll(string(g.raw), "\n", "\r\n")
	}

	// LIST "" *: every mailbox, the imported hierarchy and the special-use ones.
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(ok(imaps+"/")), "\r\n") {
		m := regexp.MustCompile(`^\* LIST \([^)]*\) "/" (.+)$`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("LIST line %q", l)
		}
		names = append(names, m[1])
	}
	slices.Sort(names)
	if want := []string{"Archive", "Archive/2024", "Drafts", "INBOX", "Junk", "Sent", "Trash"}; !slices.Equal(names, want) {
		t.Errorf("LIST: %v, want %v", names, want)
	}

	// EXAMINE through -X: the untagged data, read-only.
	ex := ok("-X", "EXAMINE INBOX", imaps+"/")
	uv := regexp.MustCompile(`\* OK \[UIDVALIDITY ([0-9]+)\]`).FindStringSubmatch(ex)
	if !strings.Contains(ex, "* 5 EXISTS\r\n") || uv == nil || !strings.Contains(ex, "[PERMANENTFLAGS ()]") {
		t.Fatalf("EXAMINE INBOX:\n%s", ex)
	}

	// Message bodies by URL: exactly the imported bytes (CRLF).
	if got := ok(imaps + "/INBOX;UID=3"); got != crlf("INBOX", 3) {
		t.Errorf("INBOX;UID=3: got %d bytes, want the %d imported", len(got), len(crlf("INBOX", 3)))
	}
	if got := ok(imaps + "/INBOX;UIDVALIDITY=" + uv[1] + "/;UID=2"); got != crlf("INBOX", 2) {
		t.Errorf("INBOX;UIDVALIDITY=%s/;UID=2: got %q", uv[1], got)
	}
	if out, code := curl(imaps + "/INBOX;UIDVALIDITY=1/;UID=2"); code != 78 {
		t.Errorf("a wrong UIDVALIDITY: exit %d (%s), want 78 (curl saw the mailbox's own)", code, out)
	}
	if got := ok(imaps + "/INBOX;MAILINDEX=4"); got != crlf("INBOX", 4) {
		t.Errorf("INBOX;MAILINDEX=4: got %q", got)
	}
	_, text, _ := strings.Cut(crlf("Archive/2024", 1), "\r\n\r\n")
	if got := ok(imaps + "/Archive%2F2024;UID=1/;SECTION=TEXT"); got != text {
		t.Errorf("SECTION=TEXT: got %q, want %q", got, text)
	}
	if got := ok(imaps + "/Archive%2F2024;UID=1/;SECTION=TEXT;PARTIAL=0.10"); got != text[:10] {
		t.Errorf("SECTION=TEXT;PARTIAL=0.10: got %q, want %q", got, text[:10])
	}
	hdr := ok(imaps + "/INBOX;UID=5/;SECTION=HEADER.FIELDS%20(MESSAGE-ID)")
	if hdr != "Message-ID: <5.INBOX@gen.test>\r\n\r\n" {
		t.Errorf("SECTION=HEADER.FIELDS (MESSAGE-ID): %q", hdr)
	}

	// Searches: a URL query (SEARCH) and UID SEARCH through -X.
	if got := ok(imaps + "/INBOX?HEADER%20Message-ID%20%3C4.INBOX@gen.test%3E"); got != "* SEARCH 4\r\n" {
		t.Errorf("SEARCH by URL: %q", got)
	}
	if got := ok("-X", `UID SEARCH UID 2:5 NOT HEADER Message-ID "<3.INBOX@gen.test>"`, imaps+"/INBOX"); got != "* SEARCH 2 4 5\r\n" {
		t.Errorf("UID SEARCH: %q", got)
	}
	// The non-PEEK fetches above set \Seen; -X shows FLAGS (curl selects first).
	if got := ok("-X", "UID FETCH 1:* (FLAGS)", imaps+"/INBOX"); strings.Count(got, `\Seen`) < 3 {
		t.Errorf("UID FETCH FLAGS after curl's fetches of UIDs 2, 3, 4:\n%s", got)
	}

	// APPEND by upload, then read back over STARTTLS with AUTH=LOGIN.
	up := filepath.Join(t.TempDir(), "up.eml")
	upMsg := "From: me@example.test\r\nSubject: uploaded by curl\r\nMessage-ID: <curl-1@gen.test>\r\n\r\nup\r\n"
	if err := os.WriteFile(up, []byte(upMsg), 0o600); err != nil {
		t.Fatal(err)
	}
	ok("-T", up, imaps+"/Archive%2F2024")
	imap := "imap://" + in.addr("imap")
	st := ok("--ssl-reqd", "--login-options", "AUTH=LOGIN", "-X", "STATUS Archive/2024 (MESSAGES UIDNEXT)", imap+"/")
	if st != "* STATUS Archive/2024 (MESSAGES 3 UIDNEXT 4)\r\n" {
		t.Errorf("STATUS after APPEND: %q", st)
	}
	if got := ok("--ssl-reqd", "--login-options", "AUTH=PLAIN", imap+"/Archive%2F2024;UID=3"); got != upMsg {
		t.Errorf("uploaded message read back: %q, want %q", got, upMsg)
	}

	// Refusals: no login without TLS (LOGINDISABLED), a wrong password.
	if out, code := curl(imap + "/"); code != 67 {
		t.Errorf("login without TLS: exit %d (%s), want 67 (login denied)", code, out)
	}
	if out, code := curl("-u", "user@example.test:wrong", imaps+"/"); code != 67 {
		t.Errorf("wrong password: exit %d (%s), want 67 (login denied)", code, out)
	}
}
