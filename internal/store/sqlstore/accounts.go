package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"pillarbox/internal/store"
)

// normDomain lower-cases a domain and drops a trailing dot. The addr
// package does the real (IDNA) canonicalisation; this only refuses what
// can never be a domain.
func normDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return r == '@' || r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return "", store.ErrInvalidName
	}
	return s, nil
}

// normAddress lower-cases "local@domain" ("@domain" when catchAll is
// allowed) and returns it with its domain.
func normAddress(s string, catchAll bool) (addr, domain string, err error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := strings.LastIndexByte(s, '@')
	if i < 0 || (i == 0 && !catchAll) || strings.ContainsFunc(s[:i], func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return "", "", store.ErrInvalidName
	}
	if domain, err = normDomain(s[i+1:]); err != nil {
		return "", "", err
	}
	return s[:i] + "@" + domain, domain, nil
}

func (t *wtx) domainExists(name string) error {
	var n int
	return notFound(t.queryRow(`SELECT 1 FROM domains WHERE name = ?`, name).Scan(&n))
}

// AddDomain adds a local domain.
func (s *Store) AddDomain(ctx context.Context, name string) error {
	name, err := normDomain(name)
	if err != nil {
		return err
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		if t.domainExists(name) == nil {
			return store.ErrExists
		}
		_, err := t.exec(`INSERT INTO domains (name, created_at) VALUES (?, ?)`, name, t.now.UnixNano())
		return err
	})
}

// RemoveDomain removes a domain no account or alias uses.
func (s *Store) RemoveDomain(ctx context.Context, name string) error {
	name, err := normDomain(name)
	if err != nil {
		return err
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		if err := t.domainExists(name); err != nil {
			return err
		}
		var n int
		err := t.queryRow(`SELECT (SELECT COUNT(*) FROM accounts WHERE domain = ?) + (SELECT COUNT(*) FROM aliases WHERE domain = ?)`, name, name).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrNotEmpty
		}
		return t.mustTouch(`DELETE FROM domains WHERE name = ?`, name)
	})
}

// Domain returns one domain.
func (s *Store) Domain(ctx context.Context, name string) (store.Domain, error) {
	name, err := normDomain(name)
	if err != nil {
		return store.Domain{}, store.ErrNotFound
	}
	var d store.Domain
	err = s.view(ctx, func(r *rtx) error {
		var at int64
		err := r.queryRow(`SELECT name, created_at FROM domains WHERE name = ?`, name).Scan(&d.Name, &at)
		d.CreatedAt = fromNanos(at)
		return notFound(err)
	})
	return d, err
}

// Domains lists the domains by name.
func (s *Store) Domains(ctx context.Context) ([]store.Domain, error) {
	var out []store.Domain
	err := s.view(ctx, func(r *rtx) error {
		return r.each(`SELECT name, created_at FROM domains ORDER BY name`, nil, func(row scanner) error {
			var d store.Domain
			var at int64
			if err := row.Scan(&d.Name, &at); err != nil {
				return err
			}
			d.CreatedAt = fromNanos(at)
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

const accountCols = `id, email, quota_bytes, used_bytes, save_sent, created_at, pop3_maildrop`

type scanner interface{ Scan(dest ...any) error }

// accountRow holds the Scan destinations of accountCols (and more).
type accountRow struct {
	a        store.Account
	saveSent int
	at       int64
	maildrop sql.NullString
}

func (ar *accountRow) dest(more ...any) []any {
	a := &ar.a
	return append([]any{&a.ID, &a.Email, &a.QuotaBytes, &a.UsedBytes, &ar.saveSent, &ar.at, &ar.maildrop}, more...)
}

// account finishes the Account after a successful Scan.
func (ar *accountRow) account() (store.Account, error) {
	a := ar.a
	a.SaveSent = ar.saveSent != 0
	a.CreatedAt = fromNanos(ar.at)
	if ar.maildrop.Valid {
		if err := json.Unmarshal([]byte(ar.maildrop.String), &a.POP3Maildrop); err != nil {
			return store.Account{}, fmt.Errorf("sqlstore: account %d: bad pop3_maildrop: %w", a.ID, err)
		}
		if len(a.POP3Maildrop) == 0 {
			a.POP3Maildrop = nil
		}
	}
	return a, nil
}

func scanAccount(r scanner) (store.Account, error) {
	var ar accountRow
	if err := r.Scan(ar.dest()...); err != nil {
		return store.Account{}, notFound(err)
	}
	return ar.account()
}

// CreateAccount creates an account and its default mailboxes.
func (s *Store) CreateAccount(ctx context.Context, email string, cred store.Credentials, quotaBytes int64) (store.Account, error) {
	email, domain, err := normAddress(email, false)
	if err != nil {
		return store.Account{}, err
	}
	if quotaBytes < 0 {
		return store.Account{}, errors.New("sqlstore: negative quota")
	}
	var a store.Account
	err = s.doAdmin(ctx, func(t *wtx) error {
		if err := t.domainExists(domain); err != nil {
			return err
		}
		var n int
		err := t.queryRow(`SELECT (SELECT COUNT(*) FROM accounts WHERE email = ?) + (SELECT COUNT(*) FROM aliases WHERE address = ?)`, email, email).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		id, err := t.nextSeq(seqAccount)
		if err != nil {
			return err
		}
		salt, iter, stored, server := scramCols(cred)
		_, err = t.exec(`INSERT INTO accounts (id, email, domain, quota_bytes, used_bytes, save_sent, password_hash,
			scram_salt, scram_iterations, scram_stored_key, scram_server_key, created_at)
			VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)`,
			id, email, domain, quotaBytes, cred.PasswordHash, salt, iter, stored, server, t.now.UnixNano())
		if err != nil {
			return err
		}
		for _, mb := range store.DefaultMailboxes {
			if _, err := t.createMailbox(id, mb.Name, mb.SpecialUse, true); err != nil {
				return err
			}
		}
		a = store.Account{ID: id, Email: email, QuotaBytes: quotaBytes, CreatedAt: fromNanos(t.now.UnixNano())}
		return nil
	})
	return a, err
}

func scramCols(c store.Credentials) (salt []byte, iter int, stored, server []byte) {
	if c.SCRAMSHA256 == nil {
		return nil, 0, nil, nil
	}
	sc := c.SCRAMSHA256
	return sc.Salt, sc.Iterations, sc.StoredKey, sc.ServerKey
}

// DeleteAccount removes an account with its mailboxes and messages.
func (s *Store) DeleteAccount(ctx context.Context, email string) error {
	email, _, err := normAddress(email, false)
	if err != nil {
		return store.ErrNotFound
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		var id int64
		if err := t.queryRow(`SELECT id FROM accounts WHERE email = ?`, email).Scan(&id); err != nil {
			return notFound(err)
		}
		ids, err := t.mailboxIDs(id)
		if err != nil {
			return err
		}
		for _, mb := range ids {
			if err := t.deleteMailbox(mb); err != nil {
				return err
			}
		}
		return t.mustTouch(`DELETE FROM accounts WHERE id = ?`, id)
	})
}

// Account returns an account by e-mail address.
func (s *Store) Account(ctx context.Context, email string) (store.Account, error) {
	email, _, err := normAddress(email, false)
	if err != nil {
		return store.Account{}, store.ErrNotFound
	}
	var a store.Account
	err = s.view(ctx, func(r *rtx) (err error) {
		a, err = scanAccount(r.queryRow(`SELECT `+accountCols+` FROM accounts WHERE email = ?`, email))
		return err
	})
	return a, err
}

// AccountByID returns an account by ID.
func (s *Store) AccountByID(ctx context.Context, id int64) (store.Account, error) {
	var a store.Account
	err := s.view(ctx, func(r *rtx) (err error) {
		a, err = scanAccount(r.queryRow(`SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
		return err
	})
	return a, err
}

// Accounts lists all accounts by e-mail address.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	var out []store.Account
	err := s.view(ctx, func(r *rtx) error {
		return r.each(`SELECT `+accountCols+` FROM accounts ORDER BY email`, nil, func(row scanner) error {
			a, err := scanAccount(row)
			if err == nil {
				out = append(out, a)
			}
			return err
		})
	})
	return out, err
}

// Credentials returns an account and its stored secrets.
func (s *Store) Credentials(ctx context.Context, email string) (store.Account, store.Credentials, error) {
	email, _, err := normAddress(email, false)
	if err != nil {
		return store.Account{}, store.Credentials{}, store.ErrNotFound
	}
	var a store.Account
	var c store.Credentials
	err = s.view(ctx, func(r *rtx) error {
		var ar accountRow
		var iter int
		var salt, stored, server []byte
		err := r.queryRow(`SELECT `+accountCols+`,
			password_hash, scram_salt, scram_iterations, scram_stored_key, scram_server_key
			FROM accounts WHERE email = ?`, email).Scan(ar.dest(&c.PasswordHash, &salt, &iter, &stored, &server)...)
		if err != nil {
			return notFound(err)
		}
		if a, err = ar.account(); err != nil {
			return err
		}
		if iter > 0 {
			c.SCRAMSHA256 = &store.SCRAMCredentials{Salt: salt, Iterations: iter, StoredKey: stored, ServerKey: server}
		}
		return nil
	})
	return a, c, err
}

// SetCredentials replaces an account's secrets.
func (s *Store) SetCredentials(ctx context.Context, accountID int64, cred store.Credentials) error {
	salt, iter, stored, server := scramCols(cred)
	return s.doAdmin(ctx, func(t *wtx) error {
		return t.mustTouch(`UPDATE accounts SET password_hash = ?, scram_salt = ?, scram_iterations = ?,
			scram_stored_key = ?, scram_server_key = ? WHERE id = ?`,
			cred.PasswordHash, salt, iter, stored, server, accountID)
	})
}

// SetQuota sets an account's quota (0 = unlimited).
func (s *Store) SetQuota(ctx context.Context, accountID int64, quotaBytes int64) error {
	if quotaBytes < 0 {
		return errors.New("sqlstore: negative quota")
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		return t.mustTouch(`UPDATE accounts SET quota_bytes = ? WHERE id = ?`, quotaBytes, accountID)
	})
}

// SetSaveSent sets whether submission saves a copy in Sent.
func (s *Store) SetSaveSent(ctx context.Context, accountID int64, on bool) error {
	return s.doAdmin(ctx, func(t *wtx) error {
		return t.mustTouch(`UPDATE accounts SET save_sent = ? WHERE id = ?`, boolInt(on), accountID)
	})
}

// SetPOP3Maildrop sets the mailboxes POP3 serves for the account (nil or
// empty: the server's default). Stored as a JSON array, NULL for the
// default.
func (s *Store) SetPOP3Maildrop(ctx context.Context, accountID int64, mailboxes []string) error {
	names, err := normMaildrop(mailboxes)
	if err != nil {
		return err
	}
	var val any // NULL
	if names != nil {
		b, err := json.Marshal(names)
		if err != nil {
			return err
		}
		val = string(b)
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		return t.mustTouch(`UPDATE accounts SET pop3_maildrop = ? WHERE id = ?`, val, accountID)
	})
}

// normMaildrop checks and canonicalises maildrop mailbox names (INBOX in
// upper case) and drops duplicates, keeping the first. Empty gives nil.
func normMaildrop(mailboxes []string) ([]string, error) {
	var out []string
	for _, name := range mailboxes {
		n, err := normMailbox(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// AddAlias adds an alias; its domain must exist and no account may have
// the same address.
func (s *Store) AddAlias(ctx context.Context, address string, targets []string) error {
	address, domain, err := normAddress(address, true)
	if err != nil {
		return err
	}
	var clean []string
	for _, tg := range targets {
		tg = strings.TrimSpace(tg)
		if tg == "" || strings.ContainsFunc(tg, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return store.ErrInvalidName
		}
		clean = append(clean, tg)
	}
	if len(clean) == 0 {
		return store.ErrInvalidName
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		if err := t.domainExists(domain); err != nil {
			return err
		}
		var n int
		err := t.queryRow(`SELECT (SELECT COUNT(*) FROM accounts WHERE email = ?) + (SELECT COUNT(*) FROM aliases WHERE address = ?)`, address, address).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		_, err = t.exec(`INSERT INTO aliases (address, domain, targets, created_at) VALUES (?, ?, ?, ?)`,
			address, domain, strings.Join(clean, "\n"), t.now.UnixNano())
		return err
	})
}

// RemoveAlias removes an alias.
func (s *Store) RemoveAlias(ctx context.Context, address string) error {
	address, _, err := normAddress(address, true)
	if err != nil {
		return store.ErrNotFound
	}
	return s.doAdmin(ctx, func(t *wtx) error {
		return t.mustTouch(`DELETE FROM aliases WHERE address = ?`, address)
	})
}

// Alias returns one alias.
func (s *Store) Alias(ctx context.Context, address string) (store.Alias, error) {
	address, _, err := normAddress(address, true)
	if err != nil {
		return store.Alias{}, store.ErrNotFound
	}
	var a store.Alias
	err = s.view(ctx, func(r *rtx) (err error) {
		a, err = scanAlias(r.queryRow(`SELECT address, targets, created_at FROM aliases WHERE address = ?`, address))
		return err
	})
	return a, err
}

// Aliases lists all aliases by address.
func (s *Store) Aliases(ctx context.Context) ([]store.Alias, error) {
	var out []store.Alias
	err := s.view(ctx, func(r *rtx) error {
		return r.each(`SELECT address, targets, created_at FROM aliases ORDER BY address`, nil, func(row scanner) error {
			a, err := scanAlias(row)
			if err == nil {
				out = append(out, a)
			}
			return err
		})
	})
	return out, err
}

func scanAlias(r scanner) (store.Alias, error) {
	var a store.Alias
	var targets string
	var at int64
	if err := r.Scan(&a.Address, &targets, &at); err != nil {
		return a, notFound(err)
	}
	a.Targets = strings.Split(targets, "\n")
	a.CreatedAt = fromNanos(at)
	return a, nil
}
