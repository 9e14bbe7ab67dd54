package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs it): %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// countSubject counts messages in an mbox export whose Subject is exactly s.
func countSubject(mbox, s string) int {
	n := 0
	for _, line := range strings.Split(mbox, "\n") {
		if strings.TrimRight(line, "\r") == "Subject: "+s {
			n++
		}
	}
	return n
}

func swaks(t *testing.T, args ...string) string {
	t.Helper()
	bin := requireTool(t, "swaks")
	cmd := exec.Command(bin, append([]string{"--timeout", "30"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestSwaks(t *testing.T) {
	requireTool(t, "swaks")
	in := newInstance(t, "")
	in.start()

	t.Run("MXPipelining", func(t *testing.T) {
		out := swaks(t, "--server", in.addr("smtp"), "--pipeline", "--ehlo", "client.test",
			"--from", "someone@remote.test", "--to", "user@example.test",
			"--header", "Subject: swaks-mx-pipeline")
		if !strings.Contains(out, "PIPELINING") {
			t.Errorf("EHLO did not advertise PIPELINING:\n%s", out)
		}
	})
	t.Run("SubmissionSTARTTLSPlain", func(t *testing.T) {
		swaks(t, "--server", in.addr("submission"), "--tls", "--auth", "PLAIN",
			"--auth-user", "user@example.test", "--auth-password", "secret-pass-1",
			"--from", "user@example.test", "--to", "user@example.test",
			"--header", "Subject: swaks-587-plain")
	})
	t.Run("SubmissionSTARTTLSLogin", func(t *testing.T) {
		swaks(t, "--server", in.addr("submission"), "--tls", "--auth", "LOGIN",
			"--auth-user", "user@example.test", "--auth-password", "secret-pass-1",
			"--from", "user@example.test", "--to", "user+tag@example.test",
			"--header", "Subject: swaks-587-login")
	})
	t.Run("SubmissionsImplicitTLS", func(t *testing.T) {
		out := swaks(t, "--server", in.addr("submissions"), "--tlsc", "--auth", "PLAIN",
			"--auth-user", "user@example.test", "--auth-password", "secret-pass-1",
			"--from", "user@example.test", "--to", "user@example.test,friend@remote.test",
			"--header", "Subject: swaks-465")
		if !strings.Contains(out, "queued as") {
			t.Errorf("no queue id in reply:\n%s", out)
		}
	})
	t.Run("WrongPasswordRefused", func(t *testing.T) {
		bin := requireTool(t, "swaks")
		out, err := exec.Command(bin, "--timeout", "30", "--server", in.addr("submission"), "--tls",
			"--auth", "PLAIN", "--auth-user", "user@example.test", "--auth-password", "wrong",
			"--from", "user@example.test", "--to", "user@example.test").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "535") {
			t.Fatalf("wrong password: err=%v, want 535\n%s", err, out)
		}
	})

	mbox := in.exportMbox("user@example.test", "")
	for _, s := range []string{"swaks-mx-pipeline", "swaks-587-plain", "swaks-587-login", "swaks-465"} {
		if n := countSubject(mbox, s); n != 1 {
			t.Errorf("subject %q: %d copies in INBOX, want 1", s, n)
		}
	}
	if !strings.Contains(mbox, "Delivered-To: user+tag@example.test") {
		t.Errorf("subaddressed delivery lacks Delivered-To header")
	}
	if q := in.run("queue", "list"); !strings.Contains(q, "friend@remote.test") {
		t.Errorf("queue list does not show the remote recipient:\n%s", q)
	}
}

const pyScript = `
import smtplib, ssl, sys
from email.message import EmailMessage
host, mx, sub, subs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def msg(subject, bcc=None):
    m = EmailMessage(); m["From"] = "user@example.test"; m["To"] = "user@example.test"
    m["Subject"] = subject
    if bcc: m["Bcc"] = bcc
    m.set_content("hello from smtplib\n")
    return m

with smtplib.SMTP(host, mx) as s:
    s.ehlo("py.test")
    assert s.has_extn("8bitmime") and s.has_extn("smtputf8") and s.has_extn("chunking"), s.esmtp_features
    s.send_message(msg("py-mx"), from_addr="a@remote.test", to_addrs=["user@example.test"])
    try:
        s.sendmail("a@remote.test", ["victim@remote.test"], "Subject: relay\r\n\r\nx\r\n")
        print("RELAYED"); sys.exit(1)
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["victim@remote.test"][0]
        assert code == 554, e.recipients

with smtplib.SMTP(host, sub) as s:
    s.ehlo("py.test")
    assert "auth" not in s.esmtp_features, "AUTH offered before STARTTLS"
    s.starttls(context=ctx); s.ehlo("py.test")
    s.login("user@example.test", "secret-pass-1")
    s.send_message(msg("py-587-bcc", bcc="hidden@example.test"), to_addrs=["user@example.test"])
    try:
        s.sendmail("other@example.test", ["user@example.test"], "Subject: spoof\r\n\r\nx\r\n")
        print("SPOOF ACCEPTED"); sys.exit(1)
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 553, e

with smtplib.SMTP_SSL(host, subs, context=ctx) as s:
    s.login("user@example.test", "secret-pass-1")
    s.send_message(msg("py-465"), to_addrs=["user@example.test"])
print("OK")
`

func TestPythonSmtplib(t *testing.T) {
	py := requireTool(t, "python3")
	in := newInstance(t, "")
	in.start()
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pyScript), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, "127.0.0.1", fmt.Sprint(in.ports["smtp"]),
		fmt.Sprint(in.ports["submission"]), fmt.Sprint(in.ports["submissions"])).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("smtplib client: %v\n%s", err, out)
	}
	mbox := in.exportMbox("user@example.test", "")
	for _, s := range []string{"py-mx", "py-587-bcc", "py-465"} {
		if n := countSubject(mbox, s); n != 1 {
			t.Errorf("subject %q: %d copies, want 1", s, n)
		}
	}
	if strings.Contains(mbox, "hidden@example.test") {
		t.Errorf("Bcc header leaked into the delivered message")
	}
	if countSubject(mbox, "relay") != 0 || countSubject(mbox, "spoof") != 0 {
		t.Errorf("refused message was delivered")
	}
}

// dialog is a minimal SMTP client for probes: send a line, read a reply.
type dialog struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *dialog {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &dialog{t: t, c: c, r: bufio.NewReader(c)}
	d.expect("220")
	return d
}

func (d *dialog) reply() string {
	d.t.Helper()
	d.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var all strings.Builder
	for {
		line, err := d.r.ReadString('\n')
		if err != nil {
			d.t.Fatalf("reading reply: %v (got %q)", err, all.String())
		}
		all.WriteString(line)
		if len(line) < 4 || line[3] != '-' {
			return all.String()
		}
	}
}

func (d *dialog) send(line string) string {
	d.t.Helper()
	if _, err := d.c.Write([]byte(line + "\r\n")); err != nil {
		d.t.Fatal(err)
	}
	return d.reply()
}

func (d *dialog) expect(prefix string) string {
	d.t.Helper()
	r := d.reply()
	if !strings.HasPrefix(r, prefix) {
		d.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

func TestRelayAndEnumerationProbes(t *testing.T) {
	in := newInstance(t, "")
	in.run("alias", "add", "sales@example.test", "user@example.test")
	in.run("alias", "add", "postmaster@example.test", "user@example.test")
	in.start()
	d := dial(t, in.addr("smtp"))
	d.send("EHLO probe.test")
	if r := d.send("MAIL FROM:<probe@remote.test>"); !strings.HasPrefix(r, "250") {
		t.Fatalf("MAIL: %q", r)
	}
	refused := []string{
		"<victim@remote.test>",
		"<victim@remote.test.>",
		"<victim%remote.test@example.test>",
		"<remote.test!victim@example.test>",
		"<@example.test:victim@remote.test>",
		`<"victim@remote.test"@example.test>`,
		`<"victim%remote.test"@example.test>`,
		"<victim@[127.0.0.1]>",
		"<user@example.test.remote.test>",
	}
	for i, rcpt := range refused {
		if i == 5 { // stay under limits.errors_per_session: a new session
			d.send("QUIT")
			d = dial(t, in.addr("smtp"))
			d.send("EHLO probe.test")
			d.send("MAIL FROM:<probe@remote.test>")
		}
		r := d.send("RCPT TO:" + rcpt)
		if !strings.HasPrefix(r, "554 5.7.1 ") {
			t.Errorf("RCPT TO:%s got %q, want 554 5.7.1 (relay denied)", rcpt, strings.TrimSpace(r))
		}
	}
	d.send("QUIT")
	d = dial(t, in.addr("smtp"))
	d.send("EHLO probe.test")
	d.send("MAIL FROM:<probe@remote.test>")
	if r := d.send("RCPT TO:<victim@remote.test>"); !strings.HasPrefix(r, "554 5.7.1") {
		t.Errorf("plain relay attempt: %q, want 554 5.7.1", r)
	}
	if r := d.send("RCPT TO:<nobody@example.test>"); !strings.HasPrefix(r, "550 5.1.1") {
		t.Errorf("unknown local user: %q, want 550 5.1.1", r)
	}
	for _, ok := range []string{"<user@example.test>", "<USER@Example.Test>", "<user+x@example.test>", "<sales@example.test>", "<Postmaster>", "<postmaster@example.test>"} {
		if r := d.send("RCPT TO:" + ok); !strings.HasPrefix(r, "250") {
			t.Errorf("RCPT TO:%s got %q, want 250", ok, strings.TrimSpace(r))
		}
	}
	d.send("QUIT")
}
