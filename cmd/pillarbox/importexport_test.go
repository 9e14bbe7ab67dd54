package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/store"
)

const sampleMbox = `From alice@remote.test Thu Jan  2 03:04:05 2025
Subject: one
Status: RO
X-Status: F

first
>From the start of a line

From bob@remote.test Fri Feb  7 08:09:10 2025
Subject: two

second
`

// msgInfo is a stored message as the tests compare it.
type msgInfo struct {
	body  string
	flags []string
	date  time.Time
}

// messages returns an account's messages of one mailbox.
func (e *env) messages(email, mailbox string) []msgInfo {
	e.t.Helper()
	st := e.store()
	defer st.Close()
	ctx := context.Background()
	acc, err := st.Account(ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	mb, err := st.Mailbox(ctx, acc.ID, mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	msgs, err := st.Messages(ctx, mb.ID, 1, false)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []msgInfo
	for _, m := range msgs {
		r, err := st.OpenMessage(ctx, mb.ID, m.UID)
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		out = append(out, msgInfo{string(b), m.Flags, m.InternalDate.UTC()})
	}
	return out // in UID order
}

// An import keeps the order of the file: UIDs follow it, across batches.
func TestImportKeepsOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mbox strings.Builder
	const n = 300 // several batches
	for i := 0; i < n; i++ {
		fmt.Fprintf(&mbox, "From a@example.test Thu Jan  2 03:04:05 2025\nSubject: m%04d\n\nbody %d\n\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "many.mbox")
	if err := os.WriteFile(path, []byte(mbox.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("", "import", "admin@example.test", "--format", "mbox", path)
	got := e.messages("admin@example.test", "INBOX")
	if len(got) != n {
		t.Fatalf("imported %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("Subject: m%04d\r\n", i); !strings.HasPrefix(m.body, want) {
			t.Fatalf("UID order: message %d starts %.20q, want %q", i, m.body, want)
		}
	}
}

func TestImportMboxExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "in.mbox")
	if err := os.WriteFile(path, []byte(sampleMbox), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.must("", "import", "admin@example.test", "--format", "mbox", path)
	if !strings.Contains(out, "imported 2 messages") {
		t.Errorf("import output %q", out)
	}
	got := e.messages("admin@example.test", "INBOX")
	want := []msgInfo{
		{"Subject: one\r\nStatus: RO\r\nX-Status: F\r\n\r\nfirst\r\nFrom the start of a line\r\n",
			[]string{store.FlagFlagged, store.FlagSeen}, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"Subject: two\r\n\r\nsecond\r\n", nil, time.Date(2025, 2, 7, 8, 9, 10, 0, time.UTC)},
	}
	if len(got) != 2 {
		t.Fatalf("INBOX has %d messages, want 2: %+v", len(got), got)
	}
	for i := range want {
		if got[i].body != want[i].body || !slices.Equal(got[i].flags, want[i].flags) || !got[i].date.Equal(want[i].date) {
			t.Errorf("message %d = %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// Export to stdout and import the result into another mailbox: same
	// bytes and dates.
	mbox := e.must("", "export", "admin@example.test", "--format", "mbox", "--output", "-")
	if !strings.Contains(mbox, "\n>From the start") || !regexp.MustCompile(`(?m)^From MAILER-DAEMON Thu Jan  2 03:04:05 2025$`).MatchString(mbox) {
		t.Errorf("exported mbox:\n%s", mbox)
	}
	e.must(mbox, "import", "admin@example.test", "--format", "mbox", "-", "--mailbox", "Copy")
	again := e.messages("admin@example.test", "Copy")
	if len(again) != 2 {
		t.Fatalf("Copy has %d messages", len(again))
	}
	for i := range got {
		if again[i].body != got[i].body || !again[i].date.Equal(got[i].date) {
			t.Errorf("round trip %d = %+v\nwant %+v", i, again[i], got[i])
		}
	}
}

func TestExportImportMaildirAllMailboxes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := filepath.Join(t.TempDir(), "in.mbox")
	if err := os.WriteFile(in, []byte(sampleMbox), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("", "import", "admin@example.test", "--format", "mbox", in)
	e.must("", "import", "admin@example.test", "--format", "mbox", in, "--mailbox", "Archive/2025")
	e.must("pw\n", "account", "add", "copy@example.test", "--password-stdin")

	dir := filepath.Join(t.TempDir(), "export")
	e.must("", "export", "admin@example.test", "--format", "maildir", "--output", dir)
	cur, err := os.ReadDir(filepath.Join(dir, "Archive", "2025", "cur"))
	if err != nil || len(cur) != 2 {
		t.Fatalf("Archive/2025/cur: %v, %v", cur, err)
	}
	if !strings.HasSuffix(cur[0].Name(), ":2,FS") && !strings.HasSuffix(cur[1].Name(), ":2,FS") {
		t.Errorf("no file with flags FS: %v", cur)
	}
	e.fails("already a Maildir", "", "export", "admin@example.test", "--format", "maildir", "--output", dir)

	out := e.must("", "import", "copy@example.test", "--format", "maildir", dir)
	if !strings.Contains(out, "imported 4 messages") {
		t.Errorf("import output %q", out)
	}
	for _, mb := range []string{"INBOX", "Archive/2025"} {
		want := e.messages("admin@example.test", mb)
		got := e.messages("copy@example.test", mb)
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", mb, len(got), len(want))
		}
		for i := range want {
			if got[i].body != want[i].body || !slices.Equal(got[i].flags, want[i].flags) || !got[i].date.Equal(want[i].date) {
				t.Errorf("%s message %d = %+v\nwant %+v", mb, i, got[i], want[i])
			}
		}
	}

	// Every mailbox as mbox files in a directory, and back.
	mdir := filepath.Join(t.TempDir(), "mboxes")
	e.must("", "export", "admin@example.test", "--format", "mbox", "--output", mdir)
	if _, err := os.Stat(filepath.Join(mdir, "Archive", "2025.mbox")); err != nil {
		t.Fatal(err)
	}
	e.must("pw\n", "account", "add", "copy2@example.test", "--password-stdin")
	e.must("", "import", "copy2@example.test", "--format", "mbox", mdir)
	if got := e.messages("copy2@example.test", "Archive/2025"); len(got) != 2 {
		t.Errorf("copy2 Archive/2025 has %d messages", len(got))
	}
}

func TestImportManyAndQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	const n = 300
	for i := range n {
		fmt.Fprintf(&b, "From x@remote.test Thu Jan  2 03:04:05 2025\nSubject: %d\n\nbody %d\n\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "many.mbox")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("", "import", "admin@example.test", "--format", "mbox", path)
	if got := e.messages("admin@example.test", "INBOX"); len(got) != n {
		t.Fatalf("imported %d messages, want %d", len(got), n)
	}
	e.must("pw\n", "account", "add", "small@example.test", "--password-stdin", "--quota", "1KiB")
	e.fails("over quota", "", "import", "small@example.test", "--format", "mbox", path)
	if got := e.messages("small@example.test", "INBOX"); len(got) >= n || len(got) == 0 {
		t.Errorf("small account got %d messages, want some but not all", len(got))
	}
}

func TestImportExportErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	e.fails("--format", "", "import", "admin@example.test", dir)
	e.fails("no such file", "", "import", "admin@example.test", "--format", "maildir", filepath.Join(dir, "x"))
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails("not a Maildir", "", "import", "admin@example.test", "--format", "maildir", filepath.Join(dir, "f"))
	e.fails("no maildir found", "", "import", "admin@example.test", "--format", "maildir", t.TempDir())
	e.fails("not found", "", "import", "nobody@example.test", "--format", "mbox", "-")
	e.fails("--output", "", "export", "admin@example.test", "--format", "mbox")
	e.fails("mbox only", "", "export", "admin@example.test", "--format", "maildir", "--output", "-")
	e.fails("mailbox Nope not found", "", "export", "admin@example.test", "--format", "mbox", "--output", "-", "--mailbox", "Nope")
}
