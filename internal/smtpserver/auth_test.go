package smtpserver

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// submissionClient connects to a submission server, does STARTTLS and EHLO.
func submissionClient(t *testing.T, env *testEnv) *client {
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.startTLS(env.clientTLS())
	c.cmd("EHLO c.test")
	ehlo := c.expect("250 ")
	if !contains(ehlo, "250-AUTH PLAIN LOGIN SCRAM-SHA-256") {
		t.Fatalf("EHLO after STARTTLS: %q", ehlo)
	}
	return c
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// sendAs runs one transaction after AUTH and checks it is accepted.
func sendAs(t *testing.T, c *client, from, msg string) {
	t.Helper()
	c.cmd("MAIL FROM:<" + from + ">")
	c.expect("250 ")
	c.cmd("RCPT TO:<friend@remote.test>")
	c.expect("250 ")
	c.cmd("DATA")
	c.expect("354 ")
	c.send(msg + ".\r\n")
	c.expect("250 2.0.0 Ok: queued as Q")
}

func TestAuthPlain(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission})
	c := submissionClient(t, env)
	c.cmd("AUTH PLAIN")
	c.expect("334 ")
	c.cmd(b64("\x00alice@example.test\x00correct horse"))
	c.expect("235 2.0.0 ")
	sendAs(t, c, "alice@example.test", "Subject: plain\r\n\r\nhi\r\n")
	d := env.be.deliveries()
	if len(d) != 1 || d[0].Info.Account == nil || d[0].Info.Account.Email != "alice@example.test" {
		t.Fatalf("delivery %+v", d)
	}
}

func TestAuthLogin(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission})
	c := submissionClient(t, env)
	c.cmd("AUTH LOGIN")
	if r := c.expect("334 "); r[0] != "334 "+b64("Username:") {
		t.Fatalf("got %q", r)
	}
	c.cmd(b64("alice@example.test"))
	c.expect("334 " + b64("Password:"))
	c.cmd(b64("correct horse"))
	c.expect("235 2.0.0 ")
	sendAs(t, c, "alice@example.test", "Subject: login\r\n\r\nhi\r\n")
}

func TestAuthSCRAM(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission})
	c := submissionClient(t, env)
	sc, err := scram.SHA256.NewClient("alice@example.test", "correct horse", "")
	if err != nil {
		t.Fatal(err)
	}
	conv := sc.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	c.cmd("AUTH SCRAM-SHA-256 " + b64(first))
	step := func() string {
		r := c.expect("334 ")
		ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r[0], "334 "))
		if err != nil {
			t.Fatal(err)
		}
		out, err := conv.Step(string(ch))
		if err != nil {
			t.Fatalf("scram step: %v", err)
		}
		return out
	}
	c.cmd(b64(step())) // client-final
	step()             // verifies the server signature
	c.cmd("")
	c.expect("235 2.0.0 ")
	if !conv.Valid() {
		t.Fatal("server signature not verified")
	}
	sendAs(t, c, "alice@example.test", "Subject: scram\r\n\r\nhi\r\n")
}

func TestAuthSCRAMWrongPassword(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission})
	c := submissionClient(t, env)
	sc, _ := scram.SHA256.NewClient("alice@example.test", "wrong", "")
	conv := sc.NewConversation()
	first, _ := conv.Step("")
	c.cmd("AUTH SCRAM-SHA-256 " + b64(first))
	r := c.expect("334 ")
	ch, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r[0], "334 "))
	final, err := conv.Step(string(ch))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd(b64(final))
	c.expect("535 5.7.8 ")
}

// Unknown user and wrong password get the same reply; a locked account
// gets 454; repeated failures end the session (MaxErrors).
func TestAuthFailures(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission, MaxErrors: 3})
	c := submissionClient(t, env)
	c.cmd("AUTH PLAIN " + b64("\x00nobody@example.test\x00correct horse"))
	unknown := c.expect("535 ")
	c.cmd("AUTH PLAIN " + b64("\x00alice@example.test\x00wrong"))
	wrong := c.expect("535 ")
	if unknown[0] != wrong[0] {
		t.Errorf("unknown user %q vs wrong password %q", unknown, wrong)
	}
	c.cmd("AUTH PLAIN " + b64("\x00locked@example.test\x00x"))
	c.expect("454 4.7.0 ")
	// RFC 4954 6: a failure of ours (the store) is temporary, not 535.
	c.cmd("AUTH PLAIN " + b64("\x00storedown@example.test\x00x"))
	c.expect("454 4.7.0 Temporary authentication failure")
	c.cmd("AUTH LOGIN " + b64("alice@example.test"))
	c.expect("334 ")
	c.cmd(b64("wrong again"))
	c.expect("535 5.7.8 ")
	c.expect("421 4.7.0 ")
	c.expectClosed()
	for _, secret := range []string{"wrong again", b64("wrong again"), b64("\x00alice@example.test\x00wrong")} {
		if strings.Contains(env.logs.String(), secret) {
			t.Errorf("secret %q in the log", secret)
		}
	}
}

// RFC 8314: implicit TLS on the submissions port.
func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmissions})
	c := dialTLS(t, env.addr, env.clientTLS())
	c.expect("220 mx.example.test ESMTP")
	c.cmd("EHLO c.test")
	ehlo := c.expect("250 ")
	if contains(ehlo, "250-STARTTLS") || !contains(ehlo, "250-AUTH PLAIN LOGIN SCRAM-SHA-256") {
		t.Fatalf("EHLO on 465: %q", ehlo)
	}
	c.cmd("STARTTLS")
	c.expect("503 5.5.1 TLS already active")
	c.cmd("AUTH PLAIN " + b64("\x00alice@example.test\x00correct horse"))
	c.expect("235 ")
	sendAs(t, c, "alice@example.test", "Subject: implicit\r\n\r\nhi\r\n")
	d := env.be.deliveries()
	if !strings.Contains(d[0].Msg, " with ESMTPSA id ") || !d[0].Info.TLS || d[0].Info.Mode != ModeSubmissions {
		t.Fatalf("delivery: %+v", d[0])
	}
}

// A plain-text client on the implicit TLS port gets nothing useful and
// the server stays up.
func TestImplicitTLSPlainClient(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmissions})
	c := dial(t, env.addr)
	c.cmd("EHLO c.test")
	if l, err := c.line(); err == nil && strings.HasPrefix(l, "250") {
		t.Fatalf("plain EHLO answered on 465: %q", l)
	}
	c2 := dialTLS(t, env.addr, env.clientTLS())
	c2.expect("220 ")
}
