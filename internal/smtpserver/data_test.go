package smtpserver

import (
	"bytes"
	"crypto/tls"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// The whole stored message of an MX transaction: Received header (RFC 5321
// 4.4) followed by the client's bytes, dot-unstuffed.
func TestReceivedGoldenMX(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO client.example.org")
	c.expect("250 ")
	c.cmd("MAIL FROM:<sender@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<alice@example.test>")
	c.expect("250 ")
	c.cmd("DATA")
	c.expect("354 ")
	c.send("From: sender@remote.test\r\nTo: alice@example.test\r\nBcc: kept@remote.test\r\nSubject: golden\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0 Ok: queued as Q1")
	d := env.be.deliveries()
	golden(t, "received_mx.golden", d[0].Msg)
	if d[0].Env.Size != int64(len(d[0].Msg)) {
		t.Errorf("Envelope.Size %d, message %d bytes", d[0].Env.Size, len(d[0].Msg))
	}
}

func TestReceivedGoldenTLS(t *testing.T) {
	r := receivedFields{
		Helo:     "laptop (bad) name;",
		Remote:   netip.MustParseAddr("2001:db8::25"),
		Hostname: "mx.example.test",
		Proto:    protocol(true, true, true),
		ID:       "0a1b2c3d4e5f.7",
		Date:     time.Date(2026, 3, 3, 11, 22, 33, 0, time.FixedZone("", 3600)),
		TLS:      &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_256_GCM_SHA384},
	}
	golden(t, "received_tls.golden", r.String())
	r.TLS, r.Proto, r.Remote, r.For = nil, protocol(false, false, false), netip.MustParseAddr("::ffff:192.0.2.7"), "x@example.test"
	golden(t, "received_plain.golden", r.String())
}

func TestProtocolKeywords(t *testing.T) {
	for _, c := range []struct {
		esmtp, tls, auth bool
		want             string
	}{
		{false, false, false, "SMTP"}, {false, true, true, "SMTP"}, {true, false, false, "ESMTP"},
		{true, true, false, "ESMTPS"}, {true, false, true, "ESMTPA"}, {true, true, true, "ESMTPSA"},
	} {
		if got := protocol(c.esmtp, c.tls, c.auth); got != c.want {
			t.Errorf("protocol(%v,%v,%v) = %s, want %s", c.esmtp, c.tls, c.auth, got, c.want)
		}
	}
}

const bccMessage = "From: alice@example.test\r\n" +
	"To: friend@remote.test\r\n" +
	"Bcc: secret1@remote.test,\r\n" +
	" secret2@remote.test,\r\n" +
	"\tsecret3@remote.test\r\n" +
	"Subject: bcc test\r\n" +
	"BCC : secret4@remote.test\r\n" +
	"bcc:\r\n" +
	"Resent-Bcc: secret5@remote.test,\r\n" +
	" secret6@remote.test\r\n" +
	"X-Bcc-Note: kept\r\n" +
	"\r\n" +
	"Bcc: body text is kept\r\n"

const bccStripped = "From: alice@example.test\r\n" +
	"To: friend@remote.test\r\n" +
	"Subject: bcc test\r\n" +
	"X-Bcc-Note: kept\r\n" +
	"\r\n" +
	"Bcc: body text is kept\r\n"

// RFC 5322 3.6.3: on submission Bcc fields go, with their continuation lines.
func TestBccRemovedOnSubmission(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmission})
	c := submissionClient(t, env)
	c.cmd("AUTH PLAIN " + b64("\x00alice@example.test\x00correct horse"))
	c.expect("235 ")
	sendAs(t, c, "alice@example.test", bccMessage)
	msg := env.be.deliveries()[0].Msg
	_, body, _ := strings.Cut(msg, "+0000\r\n")
	if body != bccStripped {
		t.Errorf("got\n%q\nwant\n%q", body, bccStripped)
	}
}

func TestMsgWriterSplits(t *testing.T) {
	cases := []struct{ in, want string }{
		{bccMessage, bccStripped},
		{"Bcc: a\r\n", ""},
		{"Subject: x\r\nBcc: a\r\n", "Subject: x\r\n"},
		{"\r\nBcc: body\r\n", "\r\nBcc: body\r\n"},
		{" leading continuation\r\nBcc: x\r\n y\r\nTo: z\r\n\r\nb\r\n", " leading continuation\r\nTo: z\r\n\r\nb\r\n"},
		{"X: " + strings.Repeat("a", 600) + "\r\nBcc: q\r\n", "X: " + strings.Repeat("a", 600) + "\r\n"},
		{strings.Repeat("b", 600) + "\r\nBcc: q\r\n", strings.Repeat("b", 600) + "\r\n"},
		{"Subject: no newline at end", "Subject: no newline at end"},
		{"Bcc: no newline at end", ""},
	}
	for _, tc := range cases {
		for _, step := range []int{1, 2, 3, 5, 7, 64, 1 << 20} {
			var out bytes.Buffer
			m := &msgWriter{w: &out, checkCRLF: false, stripBcc: true, inHeader: true}
			in := []byte(tc.in)
			for i := 0; i < len(in); i += step {
				if _, err := m.Write(in[i:min(i+step, len(in))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("step %d: %q -> %q, want %q", step, tc.in, out.String(), tc.want)
			}
			if m.written != int64(len(tc.want)) {
				t.Errorf("written %d, want %d", m.written, len(tc.want))
			}
		}
	}
}

func TestMsgWriterCRLF(t *testing.T) {
	for in, ok := range map[string]bool{
		"a\r\nb\r\n": true, "a\nb\r\n": false, "a\r\rb\r\n": false, "a\r": false, "\n": false, "": true,
	} {
		for _, step := range []int{1, 2, 100} {
			m := &msgWriter{w: &bytes.Buffer{}, checkCRLF: true, inHeader: true}
			var err error
			for i := 0; i < len(in) && err == nil; i += step {
				_, err = m.Write([]byte(in[i:min(i+step, len(in))]))
			}
			if err == nil {
				err = m.Close()
			}
			if (err == nil) != ok {
				t.Errorf("%q step %d: err %v, want ok=%v", in, step, err, ok)
			}
		}
	}
}

// Backend failures become 451 4.3.0 without their text; *Error passes.
func TestBackendErrors(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.cmd("MAIL FROM:<tempfail@example.test>")
	c.expect("451 4.3.0 Temporary local problem, try again later")
	c.cmd("MAIL FROM:<a@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<tempfail@example.test>")
	c.expect("451 4.3.0 ")
	c.cmd("RCPT TO:<nobody@example.test>")
	c.expect("550 5.1.1 No such user here")
	c.cmd("RCPT TO:<alice@example.test>")
	c.expect("250 ")
	c.cmd("DATA")
	c.expect("354 ")
	c.send("Subject: FAIL-DELIVERY\r\n\r\nx\r\n.\r\n")
	r := c.expect("451 4.3.0 ")
	if strings.Contains(strings.Join(r, ""), "secret") {
		t.Errorf("internal detail leaked: %q", r)
	}
	c.cmd("NOOP")
	c.expect("250 ")
	if !strings.Contains(env.logs.String(), "disk full") {
		t.Error("backend error not logged")
	}
}

// Spool files are removed after delivery, after a failed delivery and
// after an oversize message.
func TestSpoolRemoved(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxMessageBytes: 400 << 10})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	big := strings.Repeat(strings.Repeat("x", 76)+"\r\n", (spoolMemory/78)+10) // over spoolMemory: a file
	huge := big + big + big + big                                              // over MaxMessageBytes
	for _, body := range []string{"ok\r\n" + big, "FAIL-DELIVERY\r\n" + big, huge, "small\r\n"} {
		c.cmd("MAIL FROM:<a@remote.test>")
		c.expect("250 ")
		c.cmd("RCPT TO:<alice@example.test>")
		c.expect("250 ")
		c.cmd("DATA")
		c.expect("354 ")
		c.send(body + ".\r\n")
		c.reply()
	}
	c.cmd("QUIT")
	c.expect("221 ")
	env.be.mu.Lock()
	n := len(env.be.spools)
	msgs := len(env.be.delivered)
	env.be.mu.Unlock()
	// The three large messages went to files; the small one stayed in
	// memory. Every file is gone, whatever the outcome.
	if n != 3 {
		t.Fatalf("%d spool files created, want 3", n)
	}
	if msgs != 2 {
		t.Fatalf("%d messages delivered, want 2 (one large, one small)", msgs)
	}
	left, _ := os.ReadDir(env.be.dir)
	if len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	for _, d := range env.be.deliveries() {
		if strings.Contains(d.Msg, "ok\r\n") && !strings.HasSuffix(d.Msg, big) {
			t.Errorf("large message not delivered intact (%d bytes)", len(d.Msg))
		}
	}
}
