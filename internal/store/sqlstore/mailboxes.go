package sqlstore

import (
	"context"
	"strings"
	"unicode/utf8"

	"pillarbox/internal/store"
)

// normMailbox checks a mailbox name minimally (non-empty, valid UTF-8, no
// NUL, no leading or trailing '/', no empty segment) and spells the INBOX
// segment in upper case. IMAP naming rules live in the IMAP server.
func normMailbox(name string) (string, error) {
	if name == "" || !utf8.ValidString(name) || strings.ContainsRune(name, 0) ||
		strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", store.ErrInvalidName
	}
	first, _, _ := strings.Cut(name, "/")
	if strings.EqualFold(first, "INBOX") {
		name = "INBOX" + name[len(first):]
	}
	return name, nil
}

func validSpecialUse(s string) bool {
	switch s {
	case "", store.SpecialSent, store.SpecialDrafts, store.SpecialTrash, store.SpecialJunk,
		store.SpecialArchive, store.SpecialAll, store.SpecialFlagged:
		return true
	}
	return false
}

const mailboxCols = `id, account_id, name, special_use, subscribed, uid_validity, uid_next, highest_modseq, messages, unseen, deleted, size`

func scanMailbox(r scanner) (store.Mailbox, error) {
	var m store.Mailbox
	var sub int
	var uv, un int64
	err := r.Scan(&m.ID, &m.AccountID, &m.Name, &m.SpecialUse, &sub, &uv, &un, &m.HighestModSeq,
		&m.Messages, &m.Unseen, &m.Deleted, &m.Size)
	m.Subscribed = sub != 0
	m.UIDValidity, m.UIDNext = uint32(uv), uint32(un)
	return m, notFound(err)
}

func (t *wtx) mailboxByID(id int64) (store.Mailbox, error) {
	return scanMailbox(t.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`, id))
}

func (t *wtx) mailboxByName(accountID int64, name string) (store.Mailbox, error) {
	return scanMailbox(t.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ?`, accountID, name))
}

func (t *wtx) mailboxIDs(accountID int64) ([]int64, error) {
	rows, err := t.query(`SELECT id FROM mailboxes WHERE account_id = ?`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// createMailbox creates a mailbox (name already normalised).
func (t *wtx) createMailbox(accountID int64, name, specialUse string, subscribed bool) (store.Mailbox, error) {
	if _, err := t.mailboxByName(accountID, name); err == nil {
		return store.Mailbox{}, store.ErrExists
	} else if err != store.ErrNotFound {
		return store.Mailbox{}, err
	}
	id, err := t.nextSeq(seqMailbox)
	if err != nil {
		return store.Mailbox{}, err
	}
	uv, err := t.nextUIDValidity()
	if err != nil {
		return store.Mailbox{}, err
	}
	m := store.Mailbox{ID: id, AccountID: accountID, Name: name, SpecialUse: specialUse, Subscribed: subscribed,
		UIDValidity: uv, UIDNext: 1, HighestModSeq: 1}
	_, err = t.exec(`INSERT INTO mailboxes (`+mailboxCols+`) VALUES (?, ?, ?, ?, ?, ?, 1, 1, 0, 0, 0, 0)`,
		id, accountID, name, specialUse, boolInt(subscribed), int64(uv))
	if err != nil {
		return store.Mailbox{}, err
	}
	t.change(store.Change{Kind: store.ChangeMailbox, AccountID: accountID, MailboxID: id})
	return m, nil
}

// deleteMailbox removes a mailbox, its messages and tombstones, and gives
// the space back to the account.
func (t *wtx) deleteMailbox(id int64) error {
	mb, err := t.mailboxByID(id)
	if err != nil {
		return err
	}
	rows, err := t.query(`SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ?`, id)
	if err != nil {
		return err
	}
	var blobs []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return err
		}
		blobs = append(blobs, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM messages WHERE mailbox_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM tombstones WHERE mailbox_id = ?`, id); err != nil {
		return err
	}
	if err := t.mustTouch(`DELETE FROM mailboxes WHERE id = ?`, id); err != nil {
		return err
	}
	if _, err := t.exec(`UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?`, mb.Size, mb.AccountID); err != nil {
		return err
	}
	t.change(store.Change{Kind: store.ChangeMailbox, AccountID: mb.AccountID, MailboxID: id})
	return t.blobGarbage(blobs)
}

// Mailboxes lists an account's mailboxes by name.
func (s *Store) Mailboxes(ctx context.Context, accountID int64) ([]store.Mailbox, error) {
	var out []store.Mailbox
	err := s.read(ctx, func(r *rtx) error {
		var n int
		if err := r.queryRow(`SELECT 1 FROM accounts WHERE id = ?`, accountID).Scan(&n); err != nil {
			return notFound(err)
		}
		return r.each(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? ORDER BY name`, []any{accountID}, func(row scanner) error {
			m, err := scanMailbox(row)
			if err == nil {
				out = append(out, m)
			}
			return err
		})
	})
	return out, err
}

// Mailbox returns a mailbox by name.
func (s *Store) Mailbox(ctx context.Context, accountID int64, name string) (store.Mailbox, error) {
	name, err := normMailbox(name)
	if err != nil {
		return store.Mailbox{}, store.ErrNotFound
	}
	var m store.Mailbox
	err = s.view(ctx, func(r *rtx) (err error) {
		m, err = scanMailbox(r.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE account_id = ? AND name = ?`, accountID, name))
		return err
	})
	return m, err
}

// MailboxByID returns a mailbox by ID.
func (s *Store) MailboxByID(ctx context.Context, id int64) (store.Mailbox, error) {
	var m store.Mailbox
	err := s.view(ctx, func(r *rtx) (err error) {
		m, err = scanMailbox(r.queryRow(`SELECT `+mailboxCols+` FROM mailboxes WHERE id = ?`, id))
		return err
	})
	return m, err
}

// CreateMailbox creates a mailbox (not subscribed). Missing parents are
// not created.
func (s *Store) CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (store.Mailbox, error) {
	name, err := normMailbox(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if !validSpecialUse(specialUse) {
		return store.Mailbox{}, store.ErrInvalidName
	}
	var m store.Mailbox
	err = s.do(ctx, func(t *wtx) error {
		var n int
		if err := t.queryRow(`SELECT 1 FROM accounts WHERE id = ?`, accountID).Scan(&n); err != nil {
			return notFound(err)
		}
		m, err = t.createMailbox(accountID, name, specialUse, false)
		return err
	})
	return m, err
}

// DeleteMailbox removes a mailbox and its messages. INBOX cannot be
// deleted (store.ErrInvalidName). Children are left alone.
func (s *Store) DeleteMailbox(ctx context.Context, id int64) error {
	return s.do(ctx, func(t *wtx) error {
		mb, err := t.mailboxByID(id)
		if err != nil {
			return err
		}
		if mb.Name == "INBOX" {
			return store.ErrInvalidName
		}
		return t.deleteMailbox(id)
	})
}

// RenameMailbox renames a mailbox and its children; renaming INBOX moves
// its messages into a new mailbox (RFC 9051 6.3.6).
func (s *Store) RenameMailbox(ctx context.Context, id int64, newName string) error {
	newName, err := normMailbox(newName)
	if err != nil {
		return err
	}
	return s.do(ctx, func(t *wtx) error {
		mb, err := t.mailboxByID(id)
		if err != nil {
			return err
		}
		if _, err := t.mailboxByName(mb.AccountID, newName); err == nil {
			return store.ErrExists
		} else if err != store.ErrNotFound {
			return err
		}
		if mb.Name == "INBOX" {
			return t.renameInbox(mb, newName)
		}
		if strings.HasPrefix(newName, mb.Name+"/") {
			return store.ErrInvalidName
		}
		return t.renameTree(mb, newName)
	})
}

func (t *wtx) renameInbox(inbox store.Mailbox, newName string) error {
	dst, err := t.createMailbox(inbox.AccountID, newName, "", false)
	if err != nil {
		return err
	}
	uids, err := t.allUIDs(inbox.ID)
	if err != nil {
		return err
	}
	_, err = t.copyMessages(inbox.ID, uids, dst.ID, true)
	return err
}

// renameTree renames mb and every mailbox below it.
func (t *wtx) renameTree(mb store.Mailbox, newName string) error {
	rows, err := t.query(`SELECT id, name FROM mailboxes WHERE account_id = ?`, mb.AccountID)
	if err != nil {
		return err
	}
	type ren struct {
		id   int64
		name string
	}
	var todo []ren
	existing := map[string]bool{}
	for rows.Next() {
		var r ren
		if err := rows.Scan(&r.id, &r.name); err != nil {
			rows.Close()
			return err
		}
		existing[r.name] = true
		if r.id == mb.ID {
			todo = append(todo, ren{r.id, newName})
		} else if strings.HasPrefix(r.name, mb.Name+"/") {
			todo = append(todo, ren{r.id, newName + r.name[len(mb.Name):]})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range todo {
		if existing[r.name] {
			return store.ErrExists
		}
	}
	for _, r := range todo {
		if err := t.mustTouch(`UPDATE mailboxes SET name = ? WHERE id = ?`, r.name, r.id); err != nil {
			return err
		}
		t.change(store.Change{Kind: store.ChangeMailbox, AccountID: mb.AccountID, MailboxID: r.id})
	}
	return nil
}

// SetSubscribed subscribes or unsubscribes a mailbox.
func (s *Store) SetSubscribed(ctx context.Context, id int64, on bool) error {
	return s.do(ctx, func(t *wtx) error {
		mb, err := t.mailboxByID(id)
		if err != nil {
			return err
		}
		if err := t.mustTouch(`UPDATE mailboxes SET subscribed = ? WHERE id = ?`, boolInt(on), id); err != nil {
			return err
		}
		t.change(store.Change{Kind: store.ChangeMailbox, AccountID: mb.AccountID, MailboxID: id})
		return nil
	})
}
