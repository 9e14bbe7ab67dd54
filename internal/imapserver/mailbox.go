package imapserver

import (
	"errors"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// cmdCreate: RFC 9051 6.3.4, with RFC 6154 5.3 "(USE (\Sent))". Missing
// superior names are created too; a trailing '/' is dropped.
func cmdCreate(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 2); err != nil {
		return err
	}
	raw, err := s.decodeName(c.Args[0])
	if err != nil {
		return err
	}
	if len(raw) > 1 && raw[len(raw)-1] == delimiter {
		raw = raw[:len(raw)-1]
	}
	name := canonicalName(raw)
	if err := checkName(name); err != nil {
		return err
	}
	use := ""
	if len(c.Args) == 2 {
		if use, err = parseCreateUse(c.Args[1]); err != nil {
			return err
		}
	}
	if name == "INBOX" {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	st := s.srv.opts.Store
	for _, p := range parentNames(name) {
		if _, err := st.CreateMailbox(s.ctx, s.account.ID, p, ""); err != nil && !errors.Is(err, store.ErrExists) {
			return storeErr(err)
		}
	}
	if _, err := st.CreateMailbox(s.ctx, s.account.ID, name, use); err != nil {
		return storeErr(err)
	}
	return nil
}

// parseCreateUse parses "(USE (\Attr))" (RFC 6154 3). Only one attribute
// per mailbox is kept, and the virtual \All and \Flagged are refused.
func parseCreateUse(v imap.Value) (string, error) {
	items, err := listArg(v)
	if err != nil {
		return "", err
	}
	if len(items) != 2 {
		return "", bad("", "Expected (USE (attributes))")
	}
	if a, err := atomArg(items[0]); err != nil || a != "USE" {
		return "", bad("", "Unknown CREATE parameter")
	}
	attrs, err := listArg(items[1])
	if err != nil {
		return "", err
	}
	switch {
	case len(attrs) == 0:
		return "", nil
	case len(attrs) > 1:
		return "", no("USEATTR", "Only one special-use attribute per mailbox")
	case attrs[0].Kind != imap.KindAtom:
		return "", bad("", "Expected a special-use attribute")
	}
	for _, su := range []string{store.SpecialSent, store.SpecialDrafts, store.SpecialTrash,
		store.SpecialJunk, store.SpecialArchive} {
		if strings.EqualFold(attrs[0].Atom, su) {
			return su, nil
		}
	}
	return "", no("USEATTR", "Unsupported special-use attribute")
}

// cmdDelete: RFC 9051 6.3.5. The mailbox and its messages go; inferior
// names stay. A name that is only a parent of other mailboxes (a
// \Noselect name, here \NonExistent) cannot be deleted: NO [HASCHILDREN].
// Deleting the selected mailbox deselects it first.
func cmdDelete(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 1); err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	if name == "INBOX" {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	st := s.srv.opts.Store
	mb, err := st.Mailbox(s.ctx, s.account.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		if has, err := s.hasChildren(name); err != nil {
			return err
		} else if has {
			return no("HASCHILDREN", "Only inferior mailboxes exist under this name")
		}
	}
	if err != nil {
		return storeErr(err)
	}
	if s.sel != nil && s.sel.mb.ID == mb.ID {
		s.deselect()
	}
	return storeErr(st.DeleteMailbox(s.ctx, mb.ID))
}

// hasChildren reports whether any mailbox lies below name.
func (s *session) hasChildren(name string) (bool, error) {
	all, err := s.srv.opts.Store.Mailboxes(s.ctx, s.account.ID)
	if err != nil {
		return false, err
	}
	for _, m := range all {
		if isInferior(m.Name, name) {
			return true, nil
		}
	}
	return false, nil
}

// cmdRename: RFC 9051 6.3.6. Inferior names follow (the store renames
// them); renaming INBOX moves its messages to the new mailbox. Missing
// superior names of the new name are created.
func cmdRename(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	from, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	to, err := s.mailboxArg(c.Args[1])
	if err != nil {
		return err
	}
	switch {
	case to == "INBOX":
		return no("ALREADYEXISTS", "INBOX always exists")
	case from == to:
		return no("ALREADYEXISTS", "Mailbox already exists")
	case isInferior(to, from) && from != "INBOX":
		return no("CANNOT", "Cannot rename a mailbox below itself")
	}
	st := s.srv.opts.Store
	mb, err := st.Mailbox(s.ctx, s.account.ID, from)
	if err != nil {
		return storeErr(err)
	}
	if _, err := st.Mailbox(s.ctx, s.account.ID, to); err == nil {
		return no("ALREADYEXISTS", "Mailbox already exists")
	}
	for _, p := range parentNames(to) {
		if _, err := st.CreateMailbox(s.ctx, s.account.ID, p, ""); err != nil && !errors.Is(err, store.ErrExists) {
			return storeErr(err)
		}
	}
	return storeErr(st.RenameMailbox(s.ctx, mb.ID, to))
}

// cmdSubscribe: SUBSCRIBE and UNSUBSCRIBE, RFC 9051 6.3.7 and 6.3.8.
// Only existing mailboxes can be subscribed (the store keeps the flag on
// the mailbox).
func cmdSubscribe(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 1); err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	st := s.srv.opts.Store
	mb, err := st.Mailbox(s.ctx, s.account.ID, name)
	if err != nil {
		return storeErr(err)
	}
	return storeErr(st.SetSubscribed(s.ctx, mb.ID, c.Name == "SUBSCRIBE"))
}
