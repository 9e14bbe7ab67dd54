package app

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/config"
	"pillarbox/internal/testkit"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = testkit.LogBuffer

// rawCmd sends one command line and returns the reply code.
func rawCmd(t *testing.T, c *smtp.Client, line string) int {
	t.Helper()
	id, err := c.Text.Cmd("%s", line)
	if err != nil {
		t.Fatal(err)
	}
	c.Text.StartResponse(id)
	defer c.Text.EndResponse(id)
	code, _, err := c.Text.ReadResponse(0)
	var te *textproto.Error
	if err != nil && !errors.As(err, &te) {
		t.Fatalf("%s: %v", line, err)
	}
	return code
}

func sizeOf(t *testing.T, c *smtp.Client) string {
	t.Helper()
	ok, v := c.Extension("SIZE")
	if !ok {
		t.Fatal("no SIZE in EHLO")
	}
	return v
}

func (a *App) config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Reload applies [limits] to new sessions (message size, recipients and
// the session total shared by all listeners); old sessions keep theirs;
// keys that need a restart are logged by name and not applied; an invalid
// file changes nothing.
func TestReloadLimits(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	a := testAppLog(t, logs)
	mx := a.addr(t, ListenSMTP)
	old := dialSMTP(t, mx)
	if got := sizeOf(t, old); got != "52428800" {
		t.Fatalf("SIZE before reload = %s", got)
	}

	cfg := *a.config()
	cfg.Limits.MessageSize = 100000
	cfg.Limits.RecipientsPerMessage = 1
	cfg.Limits.Sessions = 2
	cfg.Hostname = "other.example.test" // needs a restart
	if err := config.Write(cfg.Path, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}

	nc := dialSMTP(t, mx) // the second session: the new total is reached
	if got := sizeOf(t, nc); got != "100000" {
		t.Errorf("SIZE after reload = %s, want 100000", got)
	}
	if code := rawCmd(t, nc, "MAIL FROM:<sender@remote.test> SIZE=200000"); code != 552 {
		t.Errorf("MAIL SIZE=200000 after reload: %d, want 552", code)
	}
	if code := rawCmd(t, nc, "MAIL FROM:<sender@remote.test>"); code != 250 {
		t.Fatalf("MAIL: %d", code)
	}
	if code := rawCmd(t, nc, "RCPT TO:<alice@example.test>"); code != 250 {
		t.Fatalf("RCPT: %d", code)
	}
	if code := rawCmd(t, nc, "RCPT TO:<bob@example.test>"); code != 452 {
		t.Errorf("second RCPT with recipients_per_message 1: %d, want 452", code)
	}
	// limits.sessions counts over every listener: submission is full too.
	if _, err := smtp.Dial(a.addr(t, ListenSubmission)); err == nil || !strings.Contains(err.Error(), "421") {
		t.Errorf("third session on another listener: %v, want 421", err)
	}
	// The session from before keeps its limits.
	if code := rawCmd(t, old, "MAIL FROM:<sender@remote.test> SIZE=200000"); code != 250 {
		t.Errorf("old session MAIL SIZE=200000: %d, want 250", code)
	}
	// The hostname was not applied, and said so.
	if got := a.config().Hostname; got != testHost {
		t.Errorf("running hostname = %s, want %s", got, testHost)
	}
	if l := logs.String(); !strings.Contains(l, "need a restart") || !strings.Contains(l, "keys=[hostname]") {
		t.Errorf("log does not name the key needing a restart:\n%s", l)
	}

	// An invalid file is refused: the running limits stay.
	if err := os.WriteFile(cfg.Path, []byte("[limits]\nrecipients_per_message = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Fatal("reload of an invalid config succeeded")
	}
	if got := a.config().Limits; got.MessageSize != 100000 || got.Sessions != 2 {
		t.Errorf("limits after a failed reload = %+v", got)
	}
	if err := old.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Quit(); err != nil {
		t.Fatal(err)
	}
	// The two sessions end just after their 221: retry until a slot is free.
	var c *smtp.Client
	for i := 0; c == nil; i++ {
		cc, err := smtp.Dial(mx)
		switch {
		case err == nil:
			c = cc
			t.Cleanup(func() { c.Close() })
		case i == 500 || !strings.Contains(err.Error(), "421"):
			t.Fatalf("dial after the sessions ended: %v", err)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := c.Hello("client.remote.test"); err != nil {
		t.Fatal(err)
	}
	if got := sizeOf(t, c); got != "100000" {
		t.Errorf("SIZE after a failed reload = %s, want 100000", got)
	}
}
