package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"pillarbox/internal/store"
)

// TestPOP3MaildropReopen: the maildrop survives a restart, through every
// reader, and a reset stays reset.
func TestPOP3MaildropReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	must(t, err)
	a := setup(t, s)
	b, err := s.CreateAccount(ctx, "b@example.com", store.Credentials{PasswordHash: "h"}, 0)
	must(t, err)
	must(t, s.SetPOP3Maildrop(ctx, a.ID, []string{"inbox", "Junk", "Spam\nLine"}))
	must(t, s.SetPOP3Maildrop(ctx, b.ID, []string{"Junk"}))
	must(t, s.SetPOP3Maildrop(ctx, b.ID, nil))
	must(t, s.Close())

	s = openTest(t, dir, Options{NoSync: true})
	want := []string{"INBOX", "Junk", "Spam\nLine"}
	acc, err := s.Account(ctx, a.Email)
	must(t, err)
	byID, err := s.AccountByID(ctx, a.ID)
	must(t, err)
	cred, _, err := s.Credentials(ctx, a.Email)
	must(t, err)
	all, err := s.Accounts(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Email != "b@example.com" {
		t.Fatalf("Accounts = %+v", all)
	}
	for what, got := range map[string][]string{"Account": acc.POP3Maildrop, "AccountByID": byID.POP3Maildrop,
		"Credentials": cred.POP3Maildrop, "Accounts": all[1].POP3Maildrop} {
		if !slices.Equal(got, want) {
			t.Errorf("%s after reopen: POP3Maildrop = %q, want %q", what, got, want)
		}
	}
	if all[0].POP3Maildrop != nil {
		t.Errorf("reset maildrop after reopen = %q, want nil", all[0].POP3Maildrop)
	}
}

// TestPOP3MaildropMigration: a database made before the pop3_maildrop
// column (schema 3) is upgraded in place (migrations 4 and 5); its accounts
// get the default.
func TestPOP3MaildropMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	must(t, err)
	a := setup(t, s)
	for _, q := range []string{`ALTER TABLE accounts DROP COLUMN pop3_maildrop`,
		`ALTER TABLE queue_recipients DROP COLUMN remote_mta`, `ALTER TABLE queue_recipients DROP COLUMN delay_notified`,
		`UPDATE schema_version SET version = 3`} {
		_, err := s.wc.ExecContext(ctx, q)
		must(t, err)
	}
	must(t, s.Close())

	s = openTest(t, dir, Options{NoSync: true})
	acc, err := s.Account(ctx, a.Email)
	must(t, err)
	if acc.ID != a.ID || acc.POP3Maildrop != nil {
		t.Errorf("account after upgrade = %+v", acc)
	}
	must(t, s.SetPOP3Maildrop(ctx, a.ID, []string{"Junk"}))
	if acc, err := s.AccountByID(ctx, a.ID); err != nil || !slices.Equal(acc.POP3Maildrop, []string{"Junk"}) {
		t.Errorf("after SetPOP3Maildrop on the upgraded database: %+v, %v", acc, err)
	}
}

// TestPOP3MaildropAdminGeneration: a maildrop change is an admin change,
// so the cached lookups of a running server are dropped; a failed one is not.
func TestPOP3MaildropAdminGeneration(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	g0, err := s.AdminGeneration()
	must(t, err)
	must(t, s.SetPOP3Maildrop(ctx, a.ID, []string{"INBOX", "Junk"}))
	g1, err := s.AdminGeneration()
	must(t, err)
	if g1 == g0 {
		t.Error("admin generation unchanged by SetPOP3Maildrop")
	}
	if err := s.SetPOP3Maildrop(ctx, a.ID, []string{"bad/"}); !errors.Is(err, store.ErrInvalidName) {
		t.Fatalf("invalid name: %v", err)
	}
	if g2, _ := s.AdminGeneration(); g2 != g1 {
		t.Error("admin generation changed by a refused SetPOP3Maildrop")
	}
}

// TestExpungeManyBlobFiles: the blob file of a message expunged by
// ExpungeMany goes once its last reference went in the same call, and
// stays when the call fails.
func TestExpungeManyBlobFiles(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	junk, err := s.Mailbox(ctx, a.ID, "Junk")
	must(t, err)
	res, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(bigMsg("f"))),
		Local: []store.LocalRecipient{{AccountID: a.ID}, {AccountID: a.ID, Mailbox: "Junk"}}})
	must(t, err)
	path := s.blobPath(res.BlobID)
	in, jk := res.Local[0], res.Local[1]
	sets := []store.ExpungeSet{{MailboxID: in.MailboxID, UIDs: []uint32{in.UID}}, {MailboxID: junk.ID, UIDs: []uint32{jk.UID}}}

	_, err = s.ExpungeMany(ctx, append(slices.Clone(sets), store.ExpungeSet{MailboxID: junk.ID + 1000}))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ExpungeMany with a missing mailbox: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("blob file gone after a failed ExpungeMany: %v", err)
	}
	if got := readMsg(t, s, jk.MailboxID, jk.UID); got != bigMsg("f") {
		t.Fatalf("message after failed ExpungeMany: %d bytes", len(got))
	}
	if _, err := s.ExpungeMany(ctx, sets); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blob file still there after ExpungeMany removed both references: %v", err)
	}
}
