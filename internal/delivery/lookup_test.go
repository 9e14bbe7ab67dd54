package delivery

import (
	"context"
	"strings"
	"testing"

	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// Lookups are cached, but admin changes made through another Store on
// the same directory (the CLI, another process) take effect at the next
// RCPT: a new account, a removed alias, a removed domain.
func TestLookupCacheSeesOtherProcess(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cli, err := sqlstore.Open(f.st.Dir(), sqlstore.Options{NoSync: true, NoIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	_, err = f.l.CheckRecipient(ctx, f.mx, "dave@example.test", 0)
	wantSMTPError(t, err, 550, [3]int{5, 1, 1})
	_, err = f.l.CheckRecipient(ctx, f.mx, "dave@example.test", 0) // now cached
	wantSMTPError(t, err, 550, [3]int{5, 1, 1})
	cred := store.Credentials{PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}
	if _, err := cli.CreateAccount(ctx, "dave@example.test", cred, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.CheckRecipient(ctx, f.mx, "dave@example.test", 0); err != nil {
		t.Fatalf("account created by another process: %v", err)
	}

	if _, err := f.l.CheckRecipient(ctx, f.mx, "info@example.test", 0); err != nil {
		t.Fatal(err)
	}
	if err := cli.RemoveAlias(ctx, "info@example.test"); err != nil {
		t.Fatal(err)
	}
	_, err = f.l.CheckRecipient(ctx, f.mx, "info@example.test", 0)
	wantSMTPError(t, err, 550, [3]int{5, 1, 1})

	if _, err := f.l.CheckRecipient(ctx, f.mx, "x@other.test", 0); err != nil {
		t.Fatal(err)
	}
	if err := cli.RemoveAlias(ctx, "@other.test"); err != nil {
		t.Fatal(err)
	}
	if err := cli.DeleteAccount(ctx, "carol@other.test"); err != nil {
		t.Fatal(err)
	}
	if err := cli.RemoveDomain(ctx, "other.test"); err != nil {
		t.Fatal(err)
	}
	_, err = f.l.CheckRecipient(ctx, f.mx, "x@other.test", 0)
	wantSMTPError(t, err, 554, [3]int{5, 7, 1})
}

// Quota at RCPT uses the current usage, not the cached account's.
func TestLookupCacheQuotaUsesCurrentUsage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t) // bob has a 100-byte quota
	if _, err := f.l.CheckRecipient(ctx, f.mx, "bob@example.test", 10); err != nil {
		t.Fatalf("bob under quota: %v", err)
	}
	_, err := f.st.Deliver(ctx, &store.Delivery{Blob: strings.NewReader(strings.Repeat("x", 95)),
		Local: []store.LocalRecipient{{AccountID: f.bob.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.l.CheckRecipient(ctx, f.mx, "bob@example.test", 10)
	wantSMTPError(t, err, 552, [3]int{5, 2, 2})
}
