package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestFetchmail runs fetchmail, a real download client, against the real
// binary with an MDA that writes one file per message. Keep mode ("keep",
// UIDL tracked in an idfile) over POP3S: a first run delivers every
// message, a run after new mail delivers only the new one, a run with no
// new mail delivers nothing (exit 1), and the maildrop keeps everything.
// Delete mode over the plain port with mandatory STLS: every message is
// delivered once and the maildrop is empty; an IMAP session with INBOX
// selected sees every EXPUNGE. Each delivered file is the stored message
// (LF line ends, as fetchmail hands it to an MDA; "set invisible" keeps
// fetchmail's own Received line out).
func TestFetchmail(t *testing.T) {
	bin := requireTool(t, "fetchmail")
	in := newInstance(t, "")
	in.start()
	home := t.TempDir()
	mda := filepath.Join(home, "mda.sh")
	if err := os.WriteFile(mda, []byte("#!/bin/sh\nexec cat > \"$(mktemp \"$1/msg.XXXXXX\")\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// run runs fetchmail with a generated rc file (mode 0600, as fetchmail
	// requires) and returns its exit code (0 mail delivered, 1 no mail).
	// Its verbose log must show the POP3 commands of want.
	run := func(what, server, opts, out string, want ...string) int {
		t.Helper()
		if err := os.MkdirAll(out, 0o700); err != nil {
			t.Fatal(err)
		}
		rc := filepath.Join(home, "fetchmailrc")
		conf := fmt.Sprintf("set no bouncemail\nset invisible\npoll 127.0.0.1 %s\n"+
			"  user \"user@example.test\" there with password \"secret-pass-1\"\n"+
			"  %s no rewrite mda \"%s %s\"\n", server, opts, mda, out)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--fetchmailrc", rc, "--idfile", filepath.Join(home, "fetchids"),
			"--pidfile", filepath.Join(home, "fetchmail.pid"), "--nosyslog", "--verbose", "--timeout", "30")
		cmd.Env = append(os.Environ(), "HOME="+home, "FETCHMAILHOME="+home)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		for _, w := range want {
			if !strings.Contains(log.String(), "fetchmail: POP3> "+w+"\n") {
				t.Errorf("fetchmail (%s) did not send %s:\n%s", what, w, log.String())
			}
		}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			return 1
		case err != nil:
			t.Fatalf("fetchmail (%s): %v\n%s\nserver log:\n%s", what, err, log.String(), in.logs.String())
		}
		return 0
	}
	// check fails unless dir holds exactly the messages of subjects, each
	// the stored bytes of its message in stored.
	check := func(what, dir string, stored map[string][]byte, subjects ...string) {
		t.Helper()
		got := maildropFiles(t, dir)
		if want := ids(subjects...); !slices.Equal(sortedKeys(got), want) {
			t.Fatalf("%s: delivered %v, want %v", what, sortedKeys(got), want)
		}
		for id, raw := range got {
			if want := lf(stored[id]); !bytes.Equal(raw, want) {
				t.Errorf("%s: %s delivered as %q, stored as %q", what, id, raw, want)
			}
		}
	}
	byID := func() map[string][]byte {
		out := map[string][]byte{}
		for _, m := range storedInbox(t, in) {
			out[messageID(m)] = m
		}
		return out
	}

	pop3s := fmt.Sprintf("proto POP3 service %d uidl", in.ports["pop3s"])
	keep := "ssl no sslcertck keep"
	deliver(t, in, "fm-one", "the quick brown fox")
	deliver(t, in, "fm-dots", ".leading dot\r\n.\r\n..two\r\nend")
	run1 := filepath.Join(home, "run1")
	if code := run("keep, first run", pop3s, keep, run1, "UIDL", "QUIT"); code != 0 {
		t.Fatalf("keep, first run: exit %d, want 0 (mail delivered)", code)
	}
	stored := byID()
	check("keep, first run", run1, stored, "fm-one", "fm-dots")

	deliver(t, in, "fm-three", "jumps over the lazy dog")
	run2 := filepath.Join(home, "run2")
	if code := run("keep, second run", pop3s, keep, run2, "UIDL", "TOP 3 99999999", "QUIT"); code != 0 {
		t.Fatalf("keep, second run: exit %d, want 0 (mail delivered)", code)
	}
	stored = byID()
	check("keep, second run", run2, stored, "fm-three")
	run3 := filepath.Join(home, "run3")
	if code := run("keep, no new mail", pop3s, keep, run3); code != 1 {
		t.Errorf("keep, no new mail: exit %d, want 1 (no mail)", code)
	}
	check("keep, no new mail", run3, stored)
	if len(stored) != 3 {
		t.Fatalf("the maildrop holds %d messages after keep runs, want 3", len(stored))
	}

	// Delete mode (the default), every message (fetchall: the ones seen
	// in keep mode too), over the plain port with STLS required.
	deliver(t, in, "fm-four", "a fourth")
	stored = byID()
	w := watchExpunges(t, in, 4)
	plain := fmt.Sprintf("proto POP3 service %d uidl", in.ports["pop3"])
	stls := "sslproto \"TLS1.2+\" no sslcertck fetchall"
	run4 := filepath.Join(home, "run4")
	if code := run("delete", plain, stls, run4, "STLS", "DELE 1", "DELE 4", "QUIT"); code != 0 {
		t.Fatalf("delete: exit %d, want 0 (mail delivered)", code)
	}
	check("delete", run4, stored, "fm-one", "fm-dots", "fm-three", "fm-four")
	if got := w.expunged(t); len(got) != 4 {
		t.Errorf("IMAP saw EXPUNGE %v after fetchmail's run in delete mode, want 4 of them", got)
	}
	if left := storedInbox(t, in); len(left) != 0 {
		t.Errorf("INBOX holds %d messages after fetchmail's run in delete mode, want 0", len(left))
	}
	run5 := filepath.Join(home, "run5")
	if code := run("delete, empty maildrop", plain, stls, run5, "STLS"); code != 1 {
		t.Errorf("delete, empty maildrop: exit %d, want 1 (no mail)", code)
	}
}
