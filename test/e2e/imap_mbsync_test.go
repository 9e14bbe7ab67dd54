package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"maps"
	"math/rand"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestMbsync runs a real sync client, mbsync (isync), against the real
// binary: a full sync over IMAPS (SASL) of 3,000 messages of mixed sizes
// in two folders, imported with `pillarbox import`; then changes on both
// sides (local: flag, unflag, delete, new message, new folder; server:
// SMTP deliveries, flags, expunge, MOVE, APPEND, and a flag added to a
// message also flagged locally) and a re-sync over STARTTLS (the LOGIN
// command). After each sync both sides hold the same messages with the
// same flags; the pulled files are the imported bytes (mbsync only adds
// its X-TUID header line; both store LF line ends); a third sync changes
// nothing on either side.
func TestMbsync(t *testing.T) {
	mbsync := requireTool(t, "mbsync")
	in := newInstance(t, "")
	gen := filepath.Join(t.TempDir(), "import")
	msgs := genMaildirs(t, gen, map[string]int{"INBOX": 2500, "Archive/2024": 500})
	in.run("import", "user@example.test", "--format", "maildir", gen)
	in.start()

	local := t.TempDir()
	runMbsync := func(what, tlsType, port, authMechs string) {
		t.Helper()
		rc := filepath.Join(t.TempDir(), "mbsyncrc")
		conf := fmt.Sprintf(`FSync no

IMAPAccount pb
Host 127.0.0.1
Port %s
User user@example.test
Pass secret-pass-1
SSLType %s
CertificateFile %s
AuthMechs %s

IMAPStore pb-far
Account pb

MaildirStore pb-near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel pb
Far :pb-far:
Near :pb-near:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
`, port, tlsType, filepath.Join(in.dir, "tls", "cert.pem"), authMechs, local, local)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(mbsync, "-c", rc, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync (%s): %v\n%s\nserver log:\n%s", what, err, out, in.logs.String())
		}
		if strings.Contains(string(out), "Warning") || strings.Contains(string(out), "Error") {
			t.Errorf("mbsync (%s) complained:\n%s", what, out)
		}
	}

	// 1. Full sync over IMAPS.
	runMbsync("full sync", "IMAPS", fmt.Sprint(in.ports["imaps"]), "*")
	c := dialIMAPS(t, in)
	server := serverState(t, c)
	near := localState(t, local)
	for folder, want := range map[string]int{"INBOX": 2500, "Archive/2024": 500} {
		if len(server[folder]) != want || len(near[folder]) != want {
			t.Errorf("%s: server %d, local %d messages, want %d", folder, len(server[folder]), len(near[folder]), want)
		}
	}
	sameState(t, "after full sync", server, near)
	checkPulledBytes(t, local, msgs)

	// 2. Changes on both sides.
	inbox := filepath.Join(local, "INBOX")
	flagLocal(t, near["INBOX"]["<7.INBOX@gen.test>"], "F")  // gets \Flagged on the server
	flagLocal(t, near["INBOX"]["<3.INBOX@gen.test>"], "")   // was \Seen: loses it
	flagLocal(t, near["INBOX"]["<40.INBOX@gen.test>"], "F") // the server adds \Answered: both
	removeLocal(t, near["INBOX"]["<9.INBOX@gen.test>"])     // expunged on the server
	removeLocal(t, near["INBOX"]["<2000.INBOX@gen.test>"])  // likewise
	newLocal := []byte("From: me@example.test\nSubject: written offline\nMessage-ID: <local-1@gen.test>\n\nkept in the drafts of a laptop\n")
	writeLocal(t, inbox, "local1", newLocal)
	writeLocal(t, filepath.Join(local, "Projects"), "local2",
		[]byte("From: me@example.test\nSubject: new folder\nMessage-ID: <local-2@gen.test>\n\nin a folder made offline\n"))

	sendSMTP(t, in.addr("smtp"), "<smtp-1@gen.test>", "first new")
	sendSMTP(t, in.addr("smtp"), "<smtp-2@gen.test>", "second new")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uidOf := func(folder, id string) imap.UID { return server[folder][id].uid }
	storeUIDs(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagSeen, imap.FlagAnswered},
		uidOf("INBOX", "<10.INBOX@gen.test>"), uidOf("INBOX", "<11.INBOX@gen.test>"))
	storeUIDs(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagAnswered}, uidOf("INBOX", "<40.INBOX@gen.test>"))
	storeUIDs(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted},
		uidOf("INBOX", "<20.INBOX@gen.test>"), uidOf("INBOX", "<21.INBOX@gen.test>"))
	if err := c.UIDExpunge(imap.UIDSetNum(uidOf("INBOX", "<20.INBOX@gen.test>"), uidOf("INBOX", "<21.INBOX@gen.test>"))).Close(); err != nil {
		t.Fatalf("UID EXPUNGE: %v", err)
	}
	if _, err := c.Move(imap.UIDSetNum(uidOf("INBOX", "<30.INBOX@gen.test>")), "Archive/2024").Wait(); err != nil {
		t.Fatalf("MOVE: %v", err)
	}
	appendMsg(t, c, "Archive/2024", []imap.Flag{imap.FlagSeen},
		"From: me@example.test\r\nSubject: appended\r\nMessage-ID: <append-1@gen.test>\r\n\r\nappended on the server\r\n")

	// 3. Re-sync over STARTTLS, with the LOGIN command (the full sync used
	// SASL, SCRAM-SHA-256 where Cyrus SASL's modules are installed).
	runMbsync("re-sync", "STARTTLS", fmt.Sprint(in.ports["imap"]), "LOGIN")
	server, near = serverState(t, c), localState(t, local)
	sameState(t, "after re-sync", server, near)
	checks := []struct {
		folder, id string
		present    bool
		flags      string
	}{
		{"INBOX", "<7.INBOX@gen.test>", true, "F"},
		{"INBOX", "<3.INBOX@gen.test>", true, ""},
		{"INBOX", "<40.INBOX@gen.test>", true, "FR"},
		{"INBOX", "<10.INBOX@gen.test>", true, "RS"},
		{"INBOX", "<9.INBOX@gen.test>", false, ""},
		{"INBOX", "<2000.INBOX@gen.test>", false, ""},
		{"INBOX", "<20.INBOX@gen.test>", false, ""},
		{"INBOX", "<30.INBOX@gen.test>", false, ""},
		{"Archive/2024", "<30.INBOX@gen.test>", true, ""},
		{"Archive/2024", "<append-1@gen.test>", true, "S"},
		{"INBOX", "<smtp-1@gen.test>", true, ""},
		{"INBOX", "<smtp-2@gen.test>", true, ""},
		{"INBOX", "<local-1@gen.test>", true, ""},
		{"Projects", "<local-2@gen.test>", true, ""},
	}
	for _, ck := range checks {
		m, ok := server[ck.folder][ck.id]
		if ok != ck.present || (ok && m.flags != ck.flags) {
			t.Errorf("server %s %s: present %v flags %q; want present %v flags %q", ck.folder, ck.id, ok, m.flags, ck.present, ck.flags)
		}
	}
	if got, want := len(server["INBOX"]), 2500-2-2-1+2+1; got != want {
		t.Errorf("INBOX has %d messages after re-sync, want %d", got, want)
	}
	// The message written locally reached the server intact.
	body := fetchBody(t, c, "INBOX", server["INBOX"]["<local-1@gen.test>"].uid)
	if got := dropTUID(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))); !bytes.Equal(got, newLocal) {
		t.Errorf("appended by mbsync: server has %q, want %q", body, newLocal)
	}

	// 4. Nothing left to do: a third sync changes neither side (no local
	// file renamed, added or removed; no mailbox's UIDNEXT, MESSAGES or
	// HIGHESTMODSEQ moved, so not even a flag was stored again).
	before, beforeStatus := localFiles(t, local), statusAll(t, c)
	runMbsync("no-op sync", "IMAPS", fmt.Sprint(in.ports["imaps"]), "*")
	if after := localFiles(t, local); !slices.Equal(before, after) {
		t.Errorf("a sync with no changes changed the local maildir")
	}
	if after := statusAll(t, c); !maps.Equal(beforeStatus, after) {
		t.Errorf("a sync with no changes changed the server: %v, then %v", beforeStatus, after)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}

// genMsg is one generated message: where it was imported, its bytes (LF
// line ends, as in the Maildir it was imported from) and Maildir flags.
type genMsg struct {
	folder, id, flags string
	raw               []byte
}

// genMaildirs writes Maildirs below dir (one per folder, names as
// `pillarbox import` reads them) of generated messages: mostly short text,
// some long lines and 8-bit text, every 50th with a base64 attachment of up
// to 100 KB, and one of 1 MB. Message-IDs are <n.folder@gen.test>.
func genMaildirs(t *testing.T, dir string, counts map[string]int) map[string]genMsg {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	out := map[string]genMsg{}
	letters := []string{"", "", "S", "S", "FS", "RS", "D"}
	for folder, n := range counts {
		md := filepath.Join(dir, filepath.FromSlash(folder))
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("<%d.%s@gen.test>", i, folder)
			flags := letters[rnd.Intn(len(letters))]
			switch {
			case folder != "INBOX":
			case i == 3:
				flags = "S"
			case i == 7 || i == 10 || i == 11 || i == 30 || i == 40:
				flags = "" // the test's expectations assume none
			}
			raw := genMessage(rnd, i, id, folder == "INBOX" && i == 1234)
			name := fmt.Sprintf("%d.%06d.gen:2,%s", 1700000000+i, i, flags)
			if err := os.WriteFile(filepath.Join(md, "cur", name), raw, 0o644); err != nil {
				t.Fatal(err)
			}
			out[folder+" "+id] = genMsg{folder, id, flags, raw}
		}
	}
	return out
}

func genMessage(rnd *rand.Rand, i int, id string, huge bool) []byte {
	var b bytes.Buffer
	date := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	fmt.Fprintf(&b, "From: Sender %d <s%d@remote.test>\nTo: user@example.test\n", i%37, i%37)
	fmt.Fprintf(&b, "Subject: generated %d =?utf-8?q?caf=C3=A9?=\nDate: %s\nMessage-ID: %s\nMIME-Version: 1.0\n",
		i, date.Format(time.RFC1123Z), id)
	attach := 0
	switch {
	case huge:
		attach = 1 << 20
	case i%50 == 0:
		attach = 15000 + rnd.Intn(85000)
	}
	text := func() {
		for l, lines := 0, 1+rnd.Intn(60); l < lines; l++ {
			switch rnd.Intn(20) {
			case 0:
				b.WriteString(strings.Repeat("long ", 150) + "\n")
			case 1:
				b.WriteString("From the start of a line, caf\u00e9 \u2014 \u00fcber\n")
			case 2:
				b.WriteString(".\n")
			default:
				fmt.Fprintf(&b, "line %d of message %d: the quick brown fox\n", l, i)
			}
		}
	}
	if attach == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
		text()
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"gen-boundary\"\n\n--gen-boundary\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n")
	text()
	b.WriteString("--gen-boundary\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
	data := make([]byte, attach)
	rnd.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n--gen-boundary--\n")
	return b.Bytes()
}

// dialIMAPS logs in over IMAPS with go-imap's client, trusting the
// instance's self-signed certificate.
func dialIMAPS(t *testing.T, in *instance) *imapclient.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(in.dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in tls/cert.pem")
	}
	c, err := imapclient.DialTLS(in.addr("imaps"), &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("user@example.test", "secret-pass-1").Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// syncedMsg is a message as one side sees it: its server UID (0 locally)
// and its flags as sorted Maildir letters (D F R S T).
type syncedMsg struct {
	uid   imap.UID
	flags string
	file  string // local file
}

// mailState is folder -> Message-ID -> message.
type mailState map[string]map[string]syncedMsg

var flagLetters = map[imap.Flag]string{imap.FlagDraft: "D", imap.FlagFlagged: "F",
	imap.FlagAnswered: "R", imap.FlagSeen: "S", imap.FlagDeleted: "T"}

// serverState reads every mailbox (EXAMINE; UID, FLAGS and Message-ID of
// every message).
func serverState(t *testing.T, c *imapclient.Client) mailState {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	st := mailState{}
	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	for _, mb := range boxes {
		st[mb.Mailbox] = map[string]syncedMsg{}
		sel, err := c.Select(mb.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatalf("EXAMINE %s: %v", mb.Mailbox, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{hdr}}).Collect()
		if err != nil {
			t.Fatalf("FETCH in %s: %v", mb.Mailbox, err)
		}
		for _, m := range msgs {
			var letters []string
			for _, f := range m.Flags {
				letters = append(letters, flagLetters[f])
			}
			slices.Sort(letters)
			id := messageID(m.FindBodySection(hdr))
			if _, dup := st[mb.Mailbox][id]; dup || id == "" {
				t.Fatalf("%s: message UID %d has a duplicate or no Message-ID %q", mb.Mailbox, m.UID, id)
			}
			st[mb.Mailbox][id] = syncedMsg{uid: m.UID, flags: strings.Join(letters, "")}
		}
	}
	return st
}

// localState reads the Maildirs mbsync wrote (every directory with a cur/).
func localState(t *testing.T, root string) mailState {
	t.Helper()
	st := mailState{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(p, "cur")); err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		folder := filepath.ToSlash(rel)
		st[folder] = map[string]syncedMsg{}
		for _, sub := range []string{"cur", "new"} {
			files, err := os.ReadDir(filepath.Join(p, sub))
			if err != nil {
				return err
			}
			for _, f := range files {
				file := filepath.Join(p, sub, f.Name())
				raw, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				_, info, _ := strings.Cut(f.Name(), ":2,")
				id := messageID(raw)
				if _, dup := st[folder][id]; dup || id == "" {
					t.Fatalf("local %s: %s has a duplicate or no Message-ID %q", folder, file, id)
				}
				st[folder][id] = syncedMsg{flags: info, file: file}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// sameState fails unless both sides have the same folders, messages and flags.
func sameState(t *testing.T, when string, server, near mailState) {
	t.Helper()
	for folder, msgs := range server {
		lm, ok := near[folder]
		if !ok {
			t.Errorf("%s: server folder %s is missing locally", when, folder)
			continue
		}
		bad := 0
		for id, m := range msgs {
			l, ok := lm[id]
			if (!ok || l.flags != m.flags) && bad < 5 {
				bad++
				t.Errorf("%s: %s %s: server flags %q, local present %v flags %q", when, folder, id, m.flags, ok, l.flags)
			}
		}
		for id := range lm {
			if _, ok := msgs[id]; !ok && bad < 5 {
				bad++
				t.Errorf("%s: %s %s is local only", when, folder, id)
			}
		}
	}
	for folder := range near {
		if _, ok := server[folder]; !ok {
			t.Errorf("%s: local folder %s is missing on the server", when, folder)
		}
	}
}

// checkPulledBytes compares some pulled files with what was imported: the
// same bytes once mbsync's X-TUID line is dropped (it stores LF line
// ends, as the imported Maildir had). Always the 1 MB one and those with
// attachments, plus every 97th.
func checkPulledBytes(t *testing.T, root string, msgs map[string]genMsg) {
	t.Helper()
	near := localState(t, root)
	n := 0
	for _, g := range msgs {
		var num int
		fmt.Sscanf(g.id, "<%d.", &num)
		if len(g.raw) < 20000 && num%97 != 0 {
			continue
		}
		n++
		l, ok := near[g.folder][g.id]
		if !ok {
			t.Errorf("%s %s not pulled", g.folder, g.id)
			continue
		}
		raw, err := os.ReadFile(l.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := dropTUID(raw); !bytes.Equal(got, g.raw) {
			t.Errorf("%s %s: local copy (%d bytes) differs from the imported message (%d bytes)", g.folder, g.id, len(got), len(g.raw))
		}
		if l.flags != g.flags {
			t.Errorf("%s %s: local flags %q, imported with %q", g.folder, g.id, l.flags, g.flags)
		}
	}
	if n < 50 {
		t.Fatalf("only %d messages compared", n)
	}
}

// dropTUID removes the "X-TUID:" header line mbsync adds to what it copies.
func dropTUID(raw []byte) []byte {
	head, _, _ := bytes.Cut(raw, []byte("\n\n"))
	if i := bytes.Index(head, []byte("\nX-TUID: ")); i >= 0 {
		end := bytes.IndexByte(raw[i+1:], '\n')
		return append(append([]byte{}, raw[:i+1]...), raw[i+1+end+1:]...)
	}
	return raw
}

// messageID returns the Message-ID header value of a header block.
func messageID(raw []byte) string {
	head, _, _ := bytes.Cut(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n\n"))
	for _, l := range strings.Split(string(head), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// flagLocal renames a local message's file (moved to cur/) to carry
// exactly the flags (Maildir info letters), as a mail reader would.
func flagLocal(t *testing.T, m syncedMsg, flags string) {
	t.Helper()
	base, _, _ := strings.Cut(filepath.Base(m.file), ":2,")
	cur := filepath.Join(filepath.Dir(filepath.Dir(m.file)), "cur")
	if err := os.Rename(m.file, filepath.Join(cur, base+":2,"+flags)); err != nil {
		t.Fatal(err)
	}
}

func removeLocal(t *testing.T, m syncedMsg) {
	t.Helper()
	if err := os.Remove(m.file); err != nil {
		t.Fatal(err)
	}
}

// statusAll returns "MESSAGES UIDNEXT HIGHESTMODSEQ" of every mailbox.
func statusAll(t *testing.T, c *imapclient.Client) map[string]string {
	t.Helper()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mb := range boxes {
		st, err := c.Status(mb.Mailbox, &imap.StatusOptions{NumMessages: true, UIDNext: true, HighestModSeq: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %s: %v", mb.Mailbox, err)
		}
		out[mb.Mailbox] = fmt.Sprint(*st.NumMessages, st.UIDNext, st.HighestModSeq)
	}
	return out
}

// writeLocal delivers a message into a local Maildir (created if needed).
func writeLocal(t *testing.T, folder, name string, raw []byte) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(folder, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(folder, "new", name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// localFiles lists every file below root except mbsync's state files.
func localFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(d.Name(), "mbsyncstate") {
			out = append(out, p)
		}
		return err
	})
	slices.Sort(out)
	return out
}

func sendSMTP(t *testing.T, addr, id, subject string) {
	t.Helper()
	sendRaw(t, addr, "s@remote.test", fmt.Sprintf("From: s@remote.test\r\nTo: user@example.test\r\nSubject: %s\r\n"+
		"Message-ID: %s\r\n\r\nnew mail\r\n", subject, id))
}

// sendRaw sends msg over SMTP from sender to user@example.test.
func sendRaw(t *testing.T, addr, sender, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(sender); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("user@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("SMTP DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func storeUIDs(t *testing.T, c *imapclient.Client, op imap.StoreFlagsOp, flags []imap.Flag, uids ...imap.UID) {
	t.Helper()
	if err := c.Store(imap.UIDSetNum(uids...), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("UID STORE %v %v: %v", uids, flags, err)
	}
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox string, flags []imap.Flag, msg string) {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
}

// fetchBody returns BODY.PEEK[] of a message.
func fetchBody(t *testing.T, c *imapclient.Client, mailbox string, uid imap.UID) []byte {
	t.Helper()
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH %d BODY.PEEK[]: %v (%d messages)", uid, err, len(msgs))
	}
	return msgs[0].FindBodySection(sec)
}
