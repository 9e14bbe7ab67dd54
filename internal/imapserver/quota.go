package imapserver

import (
	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// QUOTA, RFC 9208 with QUOTA=RES-STORAGE. Each account has one quota
// root, named "" (like RFC 9208's examples), holding all its mailboxes;
// its STORAGE resource is the account's used bytes and limit in units of
// 1024 octets (usage rounded up, limit down). An account without a
// limit (QuotaBytes 0) has the root with no resources: "* QUOTA "" ()".
// RFC 2087's grammar allows the empty list (JavaMail and go-imap parse
// it); RFC 9208 has no way to say "unlimited", and a made-up limit
// would be worse. Quotas are set by the administrator (the CLI):
// SETQUOTA is refused, and QUOTASET is not advertised.

// quotaRoot is the name of the account's only quota root.
const quotaRoot = ""

// cmdGetQuotaRoot: RFC 9208 4.1.2.
func cmdGetQuotaRoot(s *session, c *imap.Command) error {
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
	acct, err := st.AccountByID(s.ctx, s.account.ID)
	if err != nil {
		return err
	}
	s.w.Raw("* QUOTAROOT ").Mailbox(mb.Name).SP().String(quotaRoot).CRLF()
	s.writeQuota(acct)
	return nil
}

// cmdGetQuota: RFC 9208 4.1.1.
func cmdGetQuota(s *session, c *imap.Command) error {
	if err := wantArgs(c, 1, 1); err != nil {
		return err
	}
	root, err := astring(c.Args[0])
	if err != nil {
		return err
	}
	if root != quotaRoot {
		return no("NONEXISTENT", "No such quota root")
	}
	acct, err := s.srv.opts.Store.AccountByID(s.ctx, s.account.ID)
	if err != nil {
		return err
	}
	s.writeQuota(acct)
	return nil
}

// cmdSetQuota: RFC 9208 4.1.3; not offered to users.
func cmdSetQuota(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, 2); err != nil {
		return err
	}
	return no("CANNOT", "Quotas are set by the administrator")
}

// writeQuota writes "* QUOTA "" (STORAGE used limit)" (RFC 9208 5.1).
func (s *session) writeQuota(acct store.Account) {
	s.w.Raw("* QUOTA ").String(quotaRoot).Raw(" (")
	if acct.QuotaBytes > 0 {
		used := (max(acct.UsedBytes, 0) + 1023) / 1024
		s.w.Raw("STORAGE ").Number(uint64(used)).SP().Number(uint64(acct.QuotaBytes / 1024))
	}
	s.w.Raw(")").CRLF()
}
