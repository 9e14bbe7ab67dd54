package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pyIMAP drives the real binary with Python's imaplib (an independent
// client): mail sent over SMTP is read over IMAPS and over IMAP with
// STARTTLS; SEARCH, FETCH, STORE, COPY, EXPUNGE, APPEND and IDLE behave as
// imaplib expects. It prints OK at the end; any failed check raises.
const pyIMAP = `
import imaplib, smtplib, ssl, sys, socket, time
host, smtp_port, imap_port, imaps_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
USER, PW = "user@example.test", "secret-pass-1"

def send(subject, body):
    s = smtplib.SMTP(host, smtp_port); s.ehlo("client.remote.test")
    s.sendmail("sender@remote.test", [USER], ("From: Sender <sender@remote.test>\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n" % (USER, subject, body)).encode())
    s.quit()

def ok(r, what):
    typ, data = r
    if typ != "OK":
        raise SystemExit("%s: %s %r" % (what, typ, data))
    return data

send("first hello", "the quick brown fox")
send("second", "jumps over the lazy dog")

m = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
ok(m.login(USER, PW), "login")
caps = ok(m.capability(), "capability")[0].decode().upper().split()
for c in ("IMAP4REV1", "IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "ESEARCH", "QUOTA"):
    assert c in caps, (c, caps)
n = int(ok(m.select("INBOX"), "select")[0])
assert n == 2, n
assert ok(m.search(None, "SUBJECT", "hello"), "search subject")[0] == b"1"
assert ok(m.search(None, "BODY", "lazy"), "search body")[0] == b"2"
assert ok(m.uid("SEARCH", None, "UNSEEN"), "uid search")[0].split() == [b"1", b"2"]
data = ok(m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "fetch header")
assert b"Subject: first hello" in data[0][1], data
data = ok(m.fetch("2", "(RFC822)"), "fetch rfc822")
assert b"jumps over the lazy dog" in data[0][1] and b"Received:" in data[0][1], data
flags = ok(m.fetch("2", "(FLAGS)"), "fetch flags")
assert b"\\Seen" in flags[0], flags
ok(m.store("1", "+FLAGS", "(\\Flagged)"), "store")
ok(m.copy("1", "Archive"), "copy")
ok(m.store("1", "+FLAGS", "(\\Deleted)"), "store deleted")
ok(m.expunge(), "expunge")
typ, data = m.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(time.time()),
                     b"From: me@example.test\r\nSubject: appended\r\n\r\nhello\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], data
st = ok(m.status("Archive", "(MESSAGES)"), "status")
assert b"MESSAGES 1" in st[0], st
m.logout()

# STARTTLS on the plain port; no LOGIN before it.
p = imaplib.IMAP4(host, imap_port)
assert "LOGINDISABLED" in p.capabilities and "STARTTLS" in p.capabilities, p.capabilities
try:
    p.login(USER, PW)
    raise SystemExit("LOGIN before STARTTLS succeeded")
except imaplib.IMAP4.error:
    pass
ok(p.starttls(ssl_context=ctx), "starttls")
ok(p.login(USER, PW), "login after starttls")
n = int(ok(p.select("INBOX"), "select 2")[0])
assert n == 2, n  # "second" and "appended"
# IDLE: a delivery made meanwhile is pushed as EXISTS.
tag = p._new_tag().decode()
p.send(("%s IDLE\r\n" % tag).encode())
assert p.readline().startswith(b"+"), "no IDLE continuation"
send("third", "pushed")
line = p.readline()
assert line.strip() == b"* 3 EXISTS", line
p.send(b"DONE\r\n")
while True:
    l = p.readline()
    if l.startswith(tag.encode()):
        assert b"OK" in l, l
        break
p.logout()
print("OK")
`

func TestPythonImaplib(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t, "")
	in.start()
	script := filepath.Join(t.TempDir(), "imap.py")
	if err := os.WriteFile(script, []byte(pyIMAP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, "127.0.0.1", fmt.Sprint(in.ports["smtp"]),
		fmt.Sprint(in.ports["imap"]), fmt.Sprint(in.ports["imaps"])).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("imaplib client: %v\n%s\nserver log:\n%s", err, out, in.logs.String())
	}
	if mbox := in.exportMbox("user@example.test", "Archive"); countSubject(mbox, "first hello") != 1 {
		t.Errorf("Archive does not hold the copied message")
	}
}
