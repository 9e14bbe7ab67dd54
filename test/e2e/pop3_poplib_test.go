package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pyPOP3 drives the real binary with Python's poplib (an independent
// client) over the plain port with STLS and over implicit TLS. Mail is
// delivered over SMTP (one message has body lines starting with "." and a
// line that is just "."); what POP3 serves is compared byte for byte with
// BODY.PEEK[] over IMAP (the stored message). It checks CAPA before and
// after STLS, the refusal of logins before STLS, USER/PASS and AUTH PLAIN
// (poplib has no AUTH helper: raw commands), STAT/LIST/UIDL/TOP/RETR, DELE
// with RSET, a dropped connection, [IN-USE], a STLS with a command
// pipelined behind it, a fully pipelined session, mail arriving during a
// session, a message expunged over IMAP during a session, and DELE + QUIT
// seen by an IMAP session as EXPUNGEs. It prints OK at the end; any failed
// check raises.
const pyPOP3 = `
import base64, imaplib, poplib, re, smtplib, socket, ssl, sys, time
host = sys.argv[1]
smtp_port, imaps_port, pop3_port, pop3s_port = [int(a) for a in sys.argv[2:6]]
socket.setdefaulttimeout(30)  # a server that stops answering fails the run, never hangs it
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
USER, PW = "user@example.test", "secret-pass-1"
CRLF = b"\r\n"
GREETING = b"+OK mail.example.test Pillarbox POP3 ready"  # hostname from the config

def send(subject, body):
    s = smtplib.SMTP(host, smtp_port); s.ehlo("client.remote.test")
    s.sendmail("sender@remote.test", [USER], ("From: Sender <sender@remote.test>\r\nTo: %s\r\n"
        "Subject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s\r\n" % (USER, subject, subject, body)).encode())
    s.quit()

def imap():
    m = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
    m.login(USER, PW)
    return m

def stored():
    """The INBOX's messages as stored (BODY.PEEK[]), in UID order."""
    m = imap()
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK", data
    out = []
    if int(data[0]) > 0:
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        out = [d[1] for d in data if isinstance(d, tuple)]
    m.logout()
    return out

def expect_err(what, prefix, fn, *args):
    try:
        r = fn(*args)
    except poplib.error_proto as e:
        got = e.args[0]
        assert got.startswith(prefix), "%s: got %r, want %r..." % (what, got, prefix)
        return got
    raise AssertionError("%s: succeeded (%r), want %r" % (what, r, prefix))

def ok(what, resp):
    assert resp.startswith(b"+OK"), "%s: %r" % (what, resp)
    return resp

def body_lines(raw):
    return raw.split(CRLF)[:-1]  # raw ends with CRLF

def check_session(p, want):
    """Everything a logged-in session serves matches the stored messages."""
    n, total = len(want), sum(len(w) for w in want)
    assert p.stat() == (n, total), ("STAT", p.stat(), (n, total))
    resp, lines, _ = p.list()
    ok("LIST", resp)
    assert lines == [b"%d %d" % (i + 1, len(w)) for i, w in enumerate(want)], ("LIST", lines)
    assert p.list(n) == b"+OK %d %d" % (n, len(want[-1])), ("LIST n", p.list(n))
    resp, lines, _ = p.uidl()
    ok("UIDL", resp)
    uids = {}
    for i, l in enumerate(lines):
        num, uid = l.split(b" ")
        assert int(num) == i + 1 and re.fullmatch(rb"[\x21-\x7e]{1,70}", uid), ("UIDL line", l)
        uids[i + 1] = uid
    assert len(set(uids.values())) == n, ("UIDL not unique", lines)
    for i in range(1, n + 1):
        assert p.uidl(i) == b"+OK %d %s" % (i, uids[i]), ("UIDL i", p.uidl(i), uids[i])
        resp, lines, octets = p.retr(i)
        ok("RETR", resp)
        got = CRLF.join(lines) + CRLF
        assert got == want[i - 1], ("RETR %d" % i, got, want[i - 1])
        assert octets == len(want[i - 1]), ("RETR octets", i, octets, len(want[i - 1]))
        head, _, body = want[i - 1].partition(CRLF + CRLF)
        hl = head.split(CRLF)
        for k in (0, 2, 4, 1000):
            resp, lines, _ = p.top(i, k)
            ok("TOP", resp)
            exp = hl + [b""] + body_lines(body)[:k]
            assert lines == exp, ("TOP %d %d" % (i, k), lines, exp)
    return uids

def login_retrying_in_use(port, tls):
    """Logs in, retrying while an older session (dropped, no QUIT) still
    holds the maildrop; the server notices the drop on its own."""
    for _ in range(300):
        p = poplib.POP3_SSL(host, port, context=ctx) if tls else poplib.POP3(host, port)
        p.user(USER)
        try:
            p.pass_(PW)
            return p
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [IN-USE]"), e.args[0]
            p.quit()
            time.sleep(0.1)
    raise AssertionError("maildrop still in use 30 s after the connection dropped")

send("pop-one", "the quick brown fox")
send("pop-dots", "first line\r\n.leading dot\r\n..two dots\r\n.\r\n.\r\nafter the dots")
send("pop-three", "jumps over\r\nthe lazy dog")
want = stored()
assert len(want) == 3, want

# 1. The plain port: no login before STLS; then USER/PASS.
p = poplib.POP3(host, pop3_port)
assert p.getwelcome() == GREETING, p.getwelcome()
caps = p.capa()
for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
    assert c in caps, (c, caps)
assert caps["EXPIRE"] == ["NEVER"] and caps["IMPLEMENTATION"] == ["Pillarbox"], caps
for c in ("USER", "SASL", "LOGIN-DELAY"):
    assert c not in caps, ("before STLS", c, caps)
expect_err("USER before STLS", b"-ERR [AUTH]", p.user, USER)
expect_err("AUTH before STLS", b"-ERR [AUTH]", p._shortcmd,
           "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode())
ok("STLS", p.stls(ctx))
caps = p.capa()
assert "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"], caps
assert "STLS" not in caps and "TOP" in caps and "PIPELINING" in caps, caps
ok("USER", p.user(USER))
ok("PASS", p.pass_(PW))
uids = check_session(p, want)

# 2. A second session on the same account while p holds the maildrop.
q = poplib.POP3_SSL(host, pop3s_port, context=ctx)
assert q.getwelcome() == GREETING, q.getwelcome()
caps = q.capa()
assert "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"] and "STLS" not in caps, caps
ok("USER", q.user(USER))
expect_err("PASS while in use", b"-ERR [IN-USE]", q.pass_, PW)
plain = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
expect_err("AUTH while in use", b"-ERR [IN-USE]", q._shortcmd, "AUTH PLAIN " + plain)
ok("QUIT", p.quit())

# 3. AUTH PLAIN on the implicit-TLS port (still in AUTHORIZATION): a wrong
# password, a cancelled exchange, then a login with an empty challenge.
bad = base64.b64encode(("\0%s\0wrong" % USER).encode()).decode()
got = expect_err("wrong password", b"-ERR [AUTH]", q._shortcmd, "AUTH PLAIN " + bad)
assert got == b"-ERR [AUTH] Authentication failed", got
assert q._shortcmd("AUTH PLAIN").rstrip() == b"+", "no empty challenge"
expect_err("cancelled AUTH", b"-ERR", q._shortcmd, "*")
assert q._shortcmd("AUTH PLAIN").rstrip() == b"+", "no empty challenge"
ok("AUTH PLAIN", q._shortcmd(plain))
assert check_session(q, want) == uids, "UIDL changed between sessions"

# 4. DELE and RSET: marked messages disappear from STAT/LIST/RETR, RSET
# brings them back, and QUIT deletes nothing.
ok("DELE", q.dele(1))
expect_err("DELE twice", b"-ERR", q.dele, 1)
assert q.stat() == (2, len(want[1]) + len(want[2])), q.stat()
expect_err("LIST deleted", b"-ERR", q.list, 1)
expect_err("RETR deleted", b"-ERR", q.retr, 1)
expect_err("TOP deleted", b"-ERR", q.top, 1, 0)
ok("RSET", q.rset())
assert q.stat() == (3, sum(len(w) for w in want)), q.stat()
send("pop-late", "arrived during a session")
assert q.stat() == (3, sum(len(w) for w in want)), ("mail arriving mid-session shows", q.stat())
ok("QUIT", q.quit())
want4 = stored()
assert len(want4) == 4 and want4[:3] == want, len(want4)

# 5. DELE, then the connection drops without QUIT: nothing is deleted.
d = poplib.POP3_SSL(host, pop3s_port, context=ctx)
d.user(USER); d.pass_(PW)
assert d.stat()[0] == 4, d.stat()
ok("DELE", d.dele(1)); ok("DELE", d.dele(4))
d.sock.shutdown(socket.SHUT_RDWR); d.file.close(); d.sock.close()
r = login_retrying_in_use(pop3s_port, True)
uids4 = check_session(r, want4)
assert all(uids4[i] == uids[i] for i in (1, 2, 3)), (uids, uids4)

# 6. A message expunged over IMAP during a POP3 session.
m = imap()
m.select("INBOX")
m.store("4", "+FLAGS", "(\\Deleted)")
m.expunge()
m.logout()
got = expect_err("RETR of a message expunged by IMAP", b"-ERR", r.retr, 4)
assert got == b"-ERR Message 4 was removed by another session", got
got = expect_err("TOP of a message expunged by IMAP", b"-ERR", r.top, 4, 0)
assert got == b"-ERR Message 4 was removed by another session", got
ok("QUIT", r.quit())

# 7. STLS with a command pipelined behind it in the same packet: the server
# drops what was buffered before the handshake (RFC 2595 4) and never
# answers it in plaintext.
s = socket.create_connection((host, pop3_port))
f = s.makefile("rb")
assert f.readline() == GREETING + CRLF
s.sendall(b"STLS\r\nCAPA\r\n")
assert f.readline().startswith(b"+OK"), "STLS"
t = ctx.wrap_socket(s, server_hostname=host)
tf = t.makefile("rb")
t.sendall(b"NOOP\r\n")
line = tf.readline()
assert line.startswith(b"-ERR"), ("NOOP in AUTHORIZATION after STLS (the injected CAPA answered?)", line)
t.close()

# 8. A whole session pipelined in one write over implicit TLS.
def read_multi(f):
    lines = []
    while True:
        l = f.readline()
        assert l.endswith(CRLF), ("truncated multi-line response", lines, l)
        l = l[:-2]
        if l == b".":
            return lines
        lines.append(l[1:] if l.startswith(b"..") else l)

s = ctx.wrap_socket(socket.create_connection((host, pop3s_port)), server_hostname=host)
f = s.makefile("rb")
assert f.readline() == GREETING + CRLF
s.sendall(("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\nTOP 2 3\r\nRETR 2\r\nDELE 3\r\n"
           "LIST 3\r\nRSET\r\nNOOP\r\nQUIT\r\n" % (USER, PW)).encode())
replies = []
for cmd in ("CAPA", "USER", "PASS", "STAT", "LIST", "UIDL", "TOP", "RETR", "DELE", "LIST3", "RSET", "NOOP", "QUIT"):
    first = f.readline()
    multi = None
    if first.startswith(b"+OK") and cmd in ("CAPA", "LIST", "TOP", "RETR"):
        multi = read_multi(f)
    replies.append((cmd, first, multi))
assert f.read() == b"", "data after QUIT"
r = dict((c, (fl, mu)) for c, fl, mu in replies)  # command -> (first line, lines)
for c in ("CAPA", "USER", "PASS", "RSET", "NOOP", "QUIT", "DELE"):
    assert r[c][0].startswith(b"+OK"), (c, r[c])
assert b"PIPELINING" in r["CAPA"][1], r["CAPA"]
want = want4[:3]
assert r["STAT"][0] == b"+OK 3 %d\r\n" % sum(len(w) for w in want), r["STAT"]
assert r["LIST"][1] == [b"%d %d" % (i + 1, len(w)) for i, w in enumerate(want)], r["LIST"]
assert r["UIDL"][0] == b"+OK 2 %s\r\n" % uids[2], r["UIDL"]
head, _, body = want[1].partition(CRLF + CRLF)
assert r["TOP"][1] == head.split(CRLF) + [b""] + body_lines(body)[:3], r["TOP"]
assert CRLF.join(r["RETR"][1]) + CRLF == want[1], r["RETR"]
assert r["LIST3"][0].startswith(b"-ERR"), r["LIST3"]
s.close()

# 9. DELE + QUIT expunges; an IMAP session with INBOX selected sees it.
watch = imap()
typ, data = watch.select("INBOX")
assert typ == "OK" and int(data[0]) == 3, data
p = poplib.POP3_SSL(host, pop3s_port, context=ctx)
p.user(USER); p.pass_(PW)
ok("DELE", p.dele(1)); ok("DELE", p.dele(3))
ok("QUIT", p.quit())
typ, _ = watch.noop()
assert typ == "OK"
typ, exp = watch.response("EXPUNGE")
left = [1, 2, 3]
for n in [x for x in exp if x is not None]:
    del left[int(n) - 1]
assert left == [2], ("EXPUNGE responses seen by IMAP", exp)
watch.logout()
assert stored() == [want[1]], "INBOX after DELE + QUIT"
p = poplib.POP3(host, pop3_port)
p.stls(ctx)
p.user(USER); p.pass_(PW)
assert p.stat() == (1, len(want[1])), p.stat()
assert p.uidl(1) == b"+OK 1 %s" % uids[2], ("UIDL after the expunge", p.uidl(1), uids[2])
ok("QUIT", p.quit())
print("OK")
`

// TestPythonPoplib runs pyPOP3 against a fresh instance, then checks with
// an export that only the message POP3 did not delete is left.
func TestPythonPoplib(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t, "")
	in.start()
	script := filepath.Join(t.TempDir(), "pop3.py")
	if err := os.WriteFile(script, []byte(pyPOP3), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, "127.0.0.1", fmt.Sprint(in.ports["smtp"]), fmt.Sprint(in.ports["imaps"]),
		fmt.Sprint(in.ports["pop3"]), fmt.Sprint(in.ports["pop3s"])).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("poplib client: %v\n%s\nserver log:\n%s", err, out, in.logs.String())
	}
	mbox := in.exportMbox("user@example.test", "")
	for subject, want := range map[string]int{"pop-one": 0, "pop-dots": 1, "pop-three": 0, "pop-late": 0} {
		if got := countSubject(mbox, subject); got != want {
			t.Errorf("INBOX holds %d messages with subject %q, want %d", got, subject, want)
		}
	}
}
