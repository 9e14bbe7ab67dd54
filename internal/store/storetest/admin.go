package storetest

import (
	"bytes"
	"slices"

	"pillarbox/internal/store"
)

func testDomains(e *env) {
	st, ctx := e.st, e.ctx
	e.must(st.AddDomain(ctx, "example.com"))
	e.must(st.AddDomain(ctx, "a.example"))
	e.wantErr(st.AddDomain(ctx, "example.com"), store.ErrExists, "AddDomain twice")
	d, err := st.Domain(ctx, "example.com")
	e.must(err)
	if d.Name != "example.com" || d.CreatedAt.IsZero() {
		e.t.Errorf("Domain = %+v", d)
	}
	_, err = st.Domain(ctx, "nope.example")
	e.wantErr(err, store.ErrNotFound, "Domain(unknown)")
	ds, err := st.Domains(ctx)
	e.must(err)
	if len(ds) != 2 || ds[0].Name != "a.example" || ds[1].Name != "example.com" {
		e.t.Errorf("Domains = %+v, want a.example, example.com", ds)
	}

	// A domain in use cannot go.
	a := e.account("user@example.com")
	e.wantErr(st.RemoveDomain(ctx, "example.com"), store.ErrNotEmpty, "RemoveDomain with account")
	e.must(st.DeleteAccount(ctx, a.Email))
	e.must(st.AddAlias(ctx, "@example.com", []string{"x@elsewhere.example"}))
	e.wantErr(st.RemoveDomain(ctx, "example.com"), store.ErrNotEmpty, "RemoveDomain with alias")
	e.must(st.RemoveAlias(ctx, "@example.com"))
	e.must(st.RemoveDomain(ctx, "example.com"))
	e.wantErr(st.RemoveDomain(ctx, "example.com"), store.ErrNotFound, "RemoveDomain twice")
	_, err = st.Domain(ctx, "example.com")
	e.wantErr(err, store.ErrNotFound, "Domain after remove")
}

func testAccounts(e *env) {
	st, ctx := e.st, e.ctx
	_, err := st.CreateAccount(ctx, "user@nodomain.example", store.Credentials{}, 0)
	e.wantErr(err, store.ErrNotFound, "CreateAccount without domain")
	e.must(st.AddDomain(ctx, "example.com"))
	a, err := st.CreateAccount(ctx, "user@example.com", store.Credentials{PasswordHash: "h"}, 5000)
	e.must(err)
	if a.ID == 0 || a.Email != "user@example.com" || a.QuotaBytes != 5000 || a.UsedBytes != 0 || a.CreatedAt.IsZero() {
		e.t.Errorf("CreateAccount = %+v", a)
	}
	_, err = st.CreateAccount(ctx, "user@example.com", store.Credentials{}, 0)
	e.wantErr(err, store.ErrExists, "CreateAccount twice")

	// Default mailboxes, with special-use, subscribed.
	mbs, err := st.Mailboxes(ctx, a.ID)
	e.must(err)
	if len(mbs) != len(store.DefaultMailboxes) {
		e.t.Fatalf("%d mailboxes, want %d", len(mbs), len(store.DefaultMailboxes))
	}
	for _, dm := range store.DefaultMailboxes {
		m := e.mailbox(a.ID, dm.Name)
		if m.SpecialUse != dm.SpecialUse || m.AccountID != a.ID || m.UIDValidity == 0 || m.UIDNext != 1 || m.Messages != 0 {
			e.t.Errorf("default mailbox %s = %+v", dm.Name, m)
		}
	}

	b, err := st.Account(ctx, "user@example.com")
	e.must(err)
	c, err := st.AccountByID(ctx, a.ID)
	e.must(err)
	if b.ID != a.ID || c.Email != a.Email || !b.CreatedAt.Equal(a.CreatedAt) {
		e.t.Errorf("Account = %+v, AccountByID = %+v, created %+v", b, c, a)
	}
	_, err = st.Account(ctx, "other@example.com")
	e.wantErr(err, store.ErrNotFound, "Account(unknown)")
	_, err = st.AccountByID(ctx, a.ID+1000)
	e.wantErr(err, store.ErrNotFound, "AccountByID(unknown)")

	e.must(st.SetQuota(ctx, a.ID, 123))
	e.must(st.SetSaveSent(ctx, a.ID, true))
	b, err = st.AccountByID(ctx, a.ID)
	e.must(err)
	if b.QuotaBytes != 123 || !b.SaveSent {
		e.t.Errorf("after SetQuota/SetSaveSent: %+v", b)
	}
	e.must(st.SetSaveSent(ctx, a.ID, false))
	e.wantErr(st.SetQuota(ctx, a.ID+1000, 1), store.ErrNotFound, "SetQuota(unknown)")
	e.wantErr(st.SetSaveSent(ctx, a.ID+1000, true), store.ErrNotFound, "SetSaveSent(unknown)")

	a2 := e.account("second@example.com")
	all, err := st.Accounts(ctx)
	e.must(err)
	if len(all) != 2 || a2.ID == a.ID {
		e.t.Errorf("Accounts = %+v", all)
	}
	for _, x := range all {
		if x.Email == "user@example.com" && x.SaveSent {
			e.t.Errorf("SetSaveSent(false) not kept: %+v", x)
		}
	}
}

func testCredentials(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	acc, cred, err := st.Credentials(ctx, a.Email)
	e.must(err)
	if acc.ID != a.ID || cred.PasswordHash != "$argon2id$test" || cred.SCRAMSHA256 != nil {
		e.t.Errorf("Credentials = %+v %+v", acc, cred)
	}
	want := store.Credentials{PasswordHash: "$argon2id$v=19$new", SCRAMSHA256: &store.SCRAMCredentials{
		Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte("stored-key"), ServerKey: []byte("server-key")}}
	e.must(st.SetCredentials(ctx, a.ID, want))
	_, cred, err = st.Credentials(ctx, a.Email)
	e.must(err)
	s := cred.SCRAMSHA256
	if cred.PasswordHash != want.PasswordHash || s == nil || !bytes.Equal(s.Salt, []byte("salt")) || s.Iterations != 4096 ||
		!bytes.Equal(s.StoredKey, []byte("stored-key")) || !bytes.Equal(s.ServerKey, []byte("server-key")) {
		e.t.Errorf("Credentials after SetCredentials = %+v %+v", cred, s)
	}
	e.wantErr(st.SetCredentials(ctx, a.ID+1000, want), store.ErrNotFound, "SetCredentials(unknown)")
	_, _, err = st.Credentials(ctx, "nobody@example.com")
	e.wantErr(err, store.ErrNotFound, "Credentials(unknown)")
}

func testDeleteAccount(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	b := e.account("other@example.com")
	r := e.deliver(a.ID, "INBOX", body("gone"))
	keep := e.deliver(b.ID, "INBOX", body("kept"))
	e.must(st.DeleteAccount(ctx, a.Email))
	e.wantErr(st.DeleteAccount(ctx, a.Email), store.ErrNotFound, "DeleteAccount twice")
	_, err := st.Account(ctx, a.Email)
	e.wantErr(err, store.ErrNotFound, "Account after delete")
	_, err = st.MailboxByID(ctx, r.MailboxID)
	e.wantErr(err, store.ErrNotFound, "MailboxByID after account delete")
	_, err = st.OpenMessage(ctx, r.MailboxID, r.UID)
	e.wantErr(err, store.ErrNotFound, "OpenMessage after account delete")
	if got := e.content(keep.MailboxID, keep.UID); got != body("kept") {
		e.t.Errorf("other account's message = %q", got)
	}
	// The address is free again, with fresh mailboxes.
	a2 := e.account("user@example.com")
	if a2.ID == a.ID {
		e.t.Errorf("recreated account reuses ID %d", a.ID)
	}
	if m := e.mailbox(a2.ID, "INBOX"); m.Messages != 0 || m.ID == r.MailboxID {
		e.t.Errorf("recreated INBOX = %+v", m)
	}
}

func testAliases(e *env) {
	st, ctx := e.st, e.ctx
	e.wantErr(st.AddAlias(ctx, "info@example.com", []string{"a@example.com"}), store.ErrNotFound, "AddAlias without domain")
	e.must(st.AddDomain(ctx, "example.com"))
	e.must(st.AddAlias(ctx, "info@example.com", []string{"a@example.com", "b@remote.example"}))
	e.must(st.AddAlias(ctx, "@example.com", []string{"catchall@example.com"}))
	e.wantErr(st.AddAlias(ctx, "info@example.com", []string{"c@example.com"}), store.ErrExists, "AddAlias twice")
	if err := st.AddAlias(ctx, "empty@example.com", nil); err == nil {
		e.t.Error("AddAlias without targets succeeded")
	}
	al, err := st.Alias(ctx, "info@example.com")
	e.must(err)
	if al.Address != "info@example.com" || !slices.Equal(al.Targets, []string{"a@example.com", "b@remote.example"}) || al.CreatedAt.IsZero() {
		e.t.Errorf("Alias = %+v", al)
	}
	ca, err := st.Alias(ctx, "@example.com")
	e.must(err)
	if !slices.Equal(ca.Targets, []string{"catchall@example.com"}) {
		e.t.Errorf("catch-all = %+v", ca)
	}
	all, err := st.Aliases(ctx)
	e.must(err)
	if len(all) != 2 {
		e.t.Errorf("Aliases = %+v", all)
	}
	_, err = st.Alias(ctx, "nope@example.com")
	e.wantErr(err, store.ErrNotFound, "Alias(unknown)")
	e.must(st.RemoveAlias(ctx, "info@example.com"))
	e.wantErr(st.RemoveAlias(ctx, "info@example.com"), store.ErrNotFound, "RemoveAlias twice")
	_, err = st.Alias(ctx, "info@example.com")
	e.wantErr(err, store.ErrNotFound, "Alias after remove")
}
