package smtpserver

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Independent clients: Python's smtplib and swaks (TESTING.md).

const pythonClient = `
import smtplib, ssl, sys
mode, host, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = True
msg = "From: alice@example.test\r\nTo: friend@remote.test\r\nBcc: hidden@remote.test\r\nSubject: py " + mode + "\r\n\r\n.dot line\r\nhello from python\r\n"
if mode == "mx":
    s = smtplib.SMTP(host, port, local_hostname="py.example.org")
    s.ehlo()
    assert s.has_extn("starttls") and s.has_extn("pipelining") and s.has_extn("chunking")
    assert not s.has_extn("auth")
    s.starttls(context=ctx)
    s.ehlo()
    refused = s.sendmail("sender@remote.test", ["alice@example.test", "bob@example.test"], msg)
    assert refused == {}, refused
    try:
        s.sendmail("sender@remote.test", ["victim@remote.test"], msg)
        raise SystemExit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code = e.recipients["victim@remote.test"][0]
        assert code == 554, code
    s.quit()
elif mode in ("plain", "login"):
    s = smtplib.SMTP(host, port, local_hostname="py.example.org")
    s.starttls(context=ctx)
    s.ehlo()
    s.user, s.password = "alice@example.test", "correct horse"
    if mode == "plain":
        code, _ = s.auth("PLAIN", s.auth_plain)
    else:
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, code
    s.sendmail("alice@example.test", ["friend@remote.test", "hidden@remote.test"], msg)
    s.quit()
elif mode == "implicit":
    s = smtplib.SMTP_SSL(host, port, context=ctx, local_hostname="py.example.org")
    s.login("alice@example.test", "correct horse")
    s.sendmail("alice@example.test", ["friend@remote.test"], msg)
    s.quit()
print("ok")
`

func TestPythonSmtplib(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	for _, tc := range []struct {
		name string
		mode Mode
		want int // messages delivered
	}{
		{"mx", ModeMX, 1}, {"plain", ModeSubmission, 1}, {"login", ModeSubmission, 1}, {"implicit", ModeSubmissions, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := startServer(t, Options{Mode: tc.mode, TLSConfig: tlsWanted})
			host, port, _ := net.SplitHostPort(env.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, "-c", pythonClient, tc.name, host, port, env.pem).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "ok") {
				t.Fatalf("python: %v\n%s", err, out)
			}
			d := env.be.deliveries()
			if len(d) != tc.want {
				t.Fatalf("%d delivered, want %d", len(d), tc.want)
			}
			msg := d[0].Msg
			if !strings.Contains(msg, "\r\n.dot line\r\n") || strings.Contains(msg, "..dot") {
				t.Errorf("dot line not unstuffed exactly once:\n%s", msg)
			}
			if hasBcc := strings.Contains(msg, "Bcc:"); hasBcc == tc.mode.submission() {
				t.Errorf("Bcc present=%v in mode %v:\n%s", hasBcc, tc.mode, msg)
			}
		})
	}
}

// tlsWanted asks startServer for a certificate in MX mode.
var tlsWanted = tlsPlaceholder()

func TestSwaks(t *testing.T) {
	t.Parallel()
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks not installed (apt-get install -y swaks)")
	}
	base := func(addr string) []string {
		return []string{"--server", addr, "--helo", "swaks.example.org", "--timeout", "20",
			"--header", "Subject: swaks", "--body", "hello from swaks\n.with a dot"}
	}
	for _, tc := range []struct {
		name string
		mode Mode
		args []string
	}{
		{"mx-pipeline", ModeMX, []string{"--from", "a@remote.test", "--to", "alice@example.test,bob@example.test", "--pipeline"}},
		{"mx-starttls", ModeMX, []string{"--from", "a@remote.test", "--to", "alice@example.test", "--tls"}},
		{"submission-plain", ModeSubmission, []string{"--from", "alice@example.test", "--to", "friend@remote.test",
			"--tls", "--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "correct horse", "--pipeline"}},
		{"submission-login", ModeSubmission, []string{"--from", "alice@example.test", "--to", "friend@remote.test",
			"--tls", "--auth", "LOGIN", "--auth-user", "alice@example.test", "--auth-password", "correct horse"}},
		{"submissions", ModeSubmissions, []string{"--from", "alice@example.test", "--to", "friend@remote.test",
			"--tls-on-connect", "--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", "correct horse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := startServer(t, Options{Mode: tc.mode, TLSConfig: tlsWanted})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, swaks, append(base(env.addr), tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			d := env.be.deliveries()
			if len(d) != 1 || !strings.Contains(d[0].Msg, "hello from swaks\r\n.with a dot\r\n") {
				t.Fatalf("deliveries %+v\nswaks:\n%s", d, out)
			}
		})
	}
}
