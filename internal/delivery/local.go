// Package delivery delivers accepted messages: Local implements the SMTP
// server's Backend over a store.Store (recipient resolution, relay policy,
// quota, and one atomic store.Deliver per message). Remote delivery (the
// outbound queue's SMTP client) comes with a later issue; here remote
// recipients are only queued.
//
// Recipient resolution, for an address whose domain is local (store.Domain):
// exact account, exact alias, then the base of a subaddress "user+tag"
// (account, then alias), then the domain's catch-all alias "@domain". Alias
// targets expand recursively up to LocalOptions.MaxAliasDepth levels; every
// address and alias is expanded at most once per recipient, so loops end;
// a recipient whose expansion yields nothing because of a loop or the depth
// limit is refused with 550 5.4.6. Local targets become accounts, external
// targets become queue recipients.
//
// Invariants:
//   - No relaying: a recipient outside the local domains is accepted only
//     from an authenticated session (SessionInfo.Account != nil); alias
//     targets configured by the administrator are the only other way mail
//     leaves. Local parts carrying routing syntax ('%', '!', '@') and source
//     routes are refused for every domain (554 5.7.1), so no downstream
//     interpretation can turn them into relaying.
//   - Deliver makes exactly one store.Deliver call: every local mailbox
//     entry and the queue item for remote recipients commit together or not
//     at all. Each local account gets one copy, whatever number of RCPTs or
//     aliases led to it.
//   - Nothing here writes to disk besides the store; the spool file comes
//     from the store (store.Spooler) so the store can adopt it by rename.
package delivery

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"pillarbox/internal/addr"
	"pillarbox/internal/smtpserver"
	"pillarbox/internal/store"
)

// DefaultMaxAliasDepth bounds alias expansion when LocalOptions leaves it 0.
const DefaultMaxAliasDepth = 10

// LocalOptions configures a Local backend. Zero values get defaults.
type LocalOptions struct {
	Logger        *slog.Logger
	Now           func() time.Time
	Rand          io.Reader // IDs for deliveries without a queue item; crypto/rand by default
	MaxAliasDepth int       // alias nesting limit; DefaultMaxAliasDepth when 0
	// SpoolDir holds spool files when the store is not a store.Spooler
	// ("" = os.TempDir()).
	SpoolDir string
}

// Local is the smtpserver.Backend that delivers into a store.Store.
type Local struct {
	st       store.Store
	dir      *directory // cached Domain/Account/Alias lookups (lookup.go)
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	maxDepth int
	spoolDir string
}

var _ smtpserver.Backend = (*Local)(nil)

// NewLocal returns a Local delivering into st.
func NewLocal(st store.Store, opts LocalOptions) *Local {
	l := &Local{st: st, dir: newDirectory(st), log: opts.Logger, now: opts.Now, rand: opts.Rand,
		maxDepth: opts.MaxAliasDepth, spoolDir: opts.SpoolDir}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	if l.maxDepth <= 0 {
		l.maxDepth = DefaultMaxAliasDepth
	}
	return l
}

// Protocol errors. Texts never reveal more than the code already does.
var (
	errRelayDenied    = &smtpserver.Error{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "Relay access denied"}
	errUnknownUser    = &smtpserver.Error{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "No such user here"}
	errBadRcptSyntax  = &smtpserver.Error{Code: 553, Enhanced: [3]int{5, 1, 3}, Message: "Bad recipient address syntax"}
	errLoop           = &smtpserver.Error{Code: 550, Enhanced: [3]int{5, 4, 6}, Message: "Alias loop or nesting too deep"}
	errMailboxFull    = &smtpserver.Error{Code: 552, Enhanced: [3]int{5, 2, 2}, Message: "Mailbox full"}
	errNotOwner       = &smtpserver.Error{Code: 553, Enhanced: [3]int{5, 7, 1}, Message: "Sender address not owned by the authenticated user"}
	errNullSender     = &smtpserver.Error{Code: 553, Enhanced: [3]int{5, 7, 1}, Message: "Null sender not allowed on submission"}
	errAuthRequired   = &smtpserver.Error{Code: 530, Enhanced: [3]int{5, 7, 0}, Message: "Authentication required"}
	errBadSenderSyntx = &smtpserver.Error{Code: 553, Enhanced: [3]int{5, 1, 7}, Message: "Bad sender address syntax"}
)

// submission reports whether the session is a submission session.
func submission(si *smtpserver.SessionInfo) bool {
	return si.Mode == smtpserver.ModeSubmission || si.Mode == smtpserver.ModeSubmissions
}

// CheckSender checks MAIL FROM. On MX every sender is accepted (SPF and
// DMARC come later). On submission the sender must be the account's
// address, a subaddress of it, or an alias whose expansion reaches the
// account; the null sender is refused.
func (l *Local) CheckSender(ctx context.Context, si *smtpserver.SessionInfo, from string) error {
	if !submission(si) {
		return nil
	}
	if si.Account == nil {
		return errAuthRequired
	}
	if from == "" {
		return errNullSender
	}
	a, err := addr.Parse(from)
	if err != nil || hasRoutingTricks(from, a) {
		return errBadSenderSyntx
	}
	a = a.Canonical()
	own, err := addr.Parse(si.Account.Email)
	if err != nil {
		return fmt.Errorf("delivery: account %d has unparsable address: %w", si.Account.ID, err)
	}
	own = own.Canonical()
	ok, err := l.senderIsOwn(ctx, a, own, si.Account.ID)
	if err != nil {
		return err
	}
	if !ok {
		l.log.Info("sender refused", "conn", si.ConnID, "account", si.Account.Email, "from", from)
		return errNotOwner
	}
	return nil
}

// postmaster resolves mail for a postmaster that has no account or alias
// of its own (RFC 5321 4.5.1: every domain must accept it): the
// postmaster of the first local domain that has one, by name.
func (l *Local) postmaster(ctx context.Context, r *Resolution) (any, error) {
	domains, err := l.st.Domains(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range domains {
		a := addr.Address{Local: "postmaster", Domain: d.Name}
		if r.seen[a.String()] {
			continue
		}
		found, err := l.expand(ctx, a, 0, r)
		if err != nil {
			return nil, err
		}
		if found && (len(r.accounts) > 0 || len(r.remote) > 0) {
			if r.Address == "" {
				r.Address = a.String()
			}
			return r, nil
		}
	}
	return nil, errUnknownUser
}

// senderIsOwn reports whether account id may use a as its sender. The
// exact address decides when it exists: an account is only its owner's,
// an alias only the accounts it reaches. Only when a is neither does its
// subaddress base ("user" of "user+tag") decide the same way, so nobody
// sends as another account or alias that merely starts with their name.
func (l *Local) senderIsOwn(ctx context.Context, a, own addr.Address, id int64) (bool, error) {
	cands := []addr.Address{a}
	if base, tag := addr.Base(a.Local); tag != "" || base != a.Local {
		cands = append(cands, addr.Address{Local: base, Domain: a.Domain})
	}
	for _, c := range cands {
		if c == own {
			return true, nil
		}
		acc, err := l.dir.account(ctx, c.String())
		if err == nil {
			return acc.ID == id, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		found, ok, err := l.aliasReaches(ctx, c.String(), id)
		if err != nil || found {
			return ok, err
		}
	}
	return false, nil
}

// aliasReaches reports whether address is an alias (found) and whether
// its expansion reaches account id (reaches). Catch-all aliases do not count:
// owning "@domain" is not a licence to send as anyone there.
func (l *Local) aliasReaches(ctx context.Context, address string, id int64) (found, reaches bool, err error) {
	al, err := l.dir.alias(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	r := l.newResolution()
	r.seen[address] = true
	if err := l.expandTargets(ctx, al.Targets, 1, r); err != nil {
		return true, false, err
	}
	for _, acc := range r.accounts {
		if acc.ID == id {
			return true, true, nil
		}
	}
	return true, false, nil
}

// CheckRecipient resolves rcpt. The token it returns (a *Resolution) is
// handed back to Deliver in smtpserver.Recipient.Token.
func (l *Local) CheckRecipient(ctx context.Context, si *smtpserver.SessionInfo, rcpt string, size int64) (any, error) {
	if strings.EqualFold(rcpt, "postmaster") { // RFC 5321 4.1.1.3: no domain
		return l.postmaster(ctx, l.newResolution())
	}
	if strings.HasPrefix(rcpt, "@") { // source route (RFC 5321 4.1.1.3): never honoured
		return nil, errRelayDenied
	}
	a, err := addr.Parse(rcpt)
	if errors.Is(err, addr.ErrSourceRoute) {
		return nil, errRelayDenied
	}
	if err != nil {
		return nil, errBadRcptSyntax
	}
	if hasRoutingTricks(rcpt, a) {
		l.log.Info("recipient refused: routing syntax", "conn", si.ConnID, "rcpt", rcpt)
		return nil, errRelayDenied
	}
	a = a.Canonical()
	r := l.newResolution()
	r.Address = a.String()
	local, err := r.isLocal(ctx, l.dir, a.Domain)
	if err != nil {
		return nil, err
	}
	if !local {
		if si.Account == nil {
			l.log.Info("relay denied", "conn", si.ConnID, "rcpt", rcpt, "remote", si.Remote.String())
			return nil, errRelayDenied
		}
		r.addRemote(a.String())
		return r, nil
	}
	found, err := l.expand(ctx, a, 0, r)
	if err != nil {
		return nil, err
	}
	if !found && a.Local == "postmaster" {
		return l.postmaster(ctx, r)
	}
	if !found {
		return nil, errUnknownUser
	}
	if len(r.accounts) == 0 && len(r.remote) == 0 {
		if r.loop {
			l.log.Warn("alias loop or nesting too deep", "rcpt", a.String())
			return nil, errLoop
		}
		return nil, errUnknownUser
	}
	if err := l.checkQuota(ctx, si, a, r, size); err != nil {
		return nil, err
	}
	return r, nil
}

// checkQuota applies quotas at RCPT time: an account reached directly that
// cannot take size more bytes refuses the recipient; an alias member that is
// full is dropped (and logged) unless that leaves nobody to deliver to.
func (l *Local) checkQuota(ctx context.Context, si *smtpserver.SessionInfo, a addr.Address, r *Resolution, size int64) error {
	need := max(size, 1)
	kept := r.accounts[:0]
	for _, acc := range r.accounts {
		if acc.QuotaBytes > 0 {
			// The resolution's account may come from the lookup cache:
			// read the usage now.
			cur, err := l.st.AccountByID(ctx, acc.ID)
			if err != nil {
				return err
			}
			acc.UsedBytes = cur.UsedBytes
		}
		if acc.QuotaBytes > 0 && acc.UsedBytes+need > acc.QuotaBytes {
			l.log.Info("recipient over quota", "conn", si.ConnID, "rcpt", a.String(),
				"account", acc.Email, "used", acc.UsedBytes, "quota", acc.QuotaBytes, "size", size)
			if r.Direct {
				return errMailboxFull
			}
			continue
		}
		kept = append(kept, acc)
	}
	r.accounts = kept
	if len(r.accounts) == 0 && len(r.remote) == 0 {
		return errMailboxFull
	}
	return nil
}

// CreateSpool returns a spool file for DATA: the store's own when it is a
// store.Spooler (so it can adopt the file without copying).
func (l *Local) CreateSpool() (*os.File, error) {
	if sp, ok := l.st.(store.Spooler); ok {
		return sp.CreateSpool()
	}
	return os.CreateTemp(l.spoolDir, "spool-*")
}

// hasRoutingTricks reports local parts that some MTA downstream could read
// as a route: '%' (the "percent hack"), '!' (UUCP bang paths), '@' inside a
// quoted local part. raw is what the client sent.
func hasRoutingTricks(raw string, a addr.Address) bool {
	return a.HasRoutingTricks() || strings.HasPrefix(raw, "@")
}
