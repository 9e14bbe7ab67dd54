package delivery

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"pillarbox/internal/smtpserver"
	"pillarbox/internal/store"
)

// localTarget is one account's entry in a delivery.
type localTarget struct {
	acc         store.Account
	deliveredTo string
}

// Deliver stores one accepted message: one mailbox entry per distinct local
// account (INBOX, with Return-Path and Delivered-To), one queue item for
// the remote recipients, and on submission a \Seen copy in the sender's
// Sent mailbox when the account asks for it. All in one store.Deliver.
// The returned ID is the queue item's when there is one, else a fresh ID.
func (l *Local) Deliver(ctx context.Context, si *smtpserver.SessionInfo, env *smtpserver.Envelope, msg io.Reader) (string, error) {
	locals, remotes, err := l.collect(ctx, si, env)
	if err != nil {
		return "", err
	}
	now := l.now()
	d := &store.Delivery{Blob: msg, InternalDate: now}
	for _, t := range locals {
		d.Local = append(d.Local, store.LocalRecipient{
			AccountID: t.acc.ID,
			Mailbox:   "INBOX",
			Prefix:    []byte("Return-Path: <" + headerSafe(env.From) + ">\r\nDelivered-To: " + headerSafe(t.deliveredTo) + "\r\n"),
		})
	}
	if sent, ok := l.sentCopy(ctx, si); ok {
		d.Local = append(d.Local, sent)
	}
	if len(remotes) > 0 {
		d.Queue = &store.QueueItem{
			From: env.From, Recipients: remotes, Size: env.Size, CreatedAt: now,
			Ret: env.Ret, EnvID: env.EnvID, SMTPUTF8: env.SMTPUTF8, Body: env.Body,
			RequireTLS: env.RequireTLS,
		}
		if si.Account != nil && submission(si) {
			d.Queue.AccountID = si.Account.ID
		}
	}
	if len(d.Local) == 0 && d.Queue == nil {
		return "", errors.New("delivery: no recipients")
	}
	res, err := l.st.Deliver(ctx, d)
	if err != nil {
		if errors.Is(err, store.ErrOverQuota) {
			return "", errMailboxFull
		}
		return "", fmt.Errorf("delivery: store: %w", err)
	}
	id := ""
	if res.Queue != nil {
		id = res.Queue.ID
	} else {
		id = l.newID()
	}
	l.logDelivered(si, env, id, res, locals, remotes)
	return id, nil
}

func (l *Local) logDelivered(si *smtpserver.SessionInfo, env *smtpserver.Envelope, id string,
	res store.DeliveryResult, locals []localTarget, remotes []store.QueueRecipient) {
	accounts := make([]string, len(locals))
	for i, t := range locals {
		accounts[i] = t.acc.Email
	}
	queued := make([]string, len(remotes))
	for i, r := range remotes {
		queued[i] = r.Address
	}
	rcpts := make([]string, len(env.Recipients))
	for i, r := range env.Recipients {
		rcpts[i] = r.Address
	}
	l.log.Debug("message delivered", "conn", si.ConnID, "queue_id", id, "blob", res.BlobID,
		"from", env.From, "rcpts", rcpts, "local", accounts, "queued", queued, "size", res.Size)
}

// collect turns the envelope's recipients into distinct local accounts and
// distinct remote queue recipients.
func (l *Local) collect(ctx context.Context, si *smtpserver.SessionInfo, env *smtpserver.Envelope) ([]localTarget, []store.QueueRecipient, error) {
	var locals []localTarget
	var remotes []store.QueueRecipient
	seenAcc := map[int64]bool{}
	seenRemote := map[string]bool{}
	for _, rc := range env.Recipients {
		r, ok := rc.Token.(*Resolution)
		if !ok { // not resolved by us at RCPT time: resolve now
			tok, err := l.CheckRecipient(ctx, si, rc.Address, 0)
			if err != nil {
				return nil, nil, err
			}
			r = tok.(*Resolution)
		}
		for _, acc := range r.accounts {
			if seenAcc[acc.ID] {
				continue
			}
			seenAcc[acc.ID] = true
			to := acc.Email
			if r.Direct {
				to = r.Address
			}
			locals = append(locals, localTarget{acc: acc, deliveredTo: to})
		}
		for _, a := range r.remote {
			if seenRemote[a] {
				continue
			}
			seenRemote[a] = true
			orcpt := rc.ORcpt
			if orcpt == "" && a != r.Address {
				// RFC 3461 4.2: keep the original recipient across alias expansion.
				orcpt = "rfc822;" + r.Address
			}
			remotes = append(remotes, store.QueueRecipient{
				Address: a, ORcpt: orcpt, Notify: rc.Notify, State: store.RcptPending,
			})
		}
	}
	return locals, remotes, nil
}

// sentCopy returns the Sent-mailbox entry for a submission whose account
// keeps copies of sent mail. The account is re-read so that an
// administrator's change applies to the next message.
func (l *Local) sentCopy(ctx context.Context, si *smtpserver.SessionInfo) (store.LocalRecipient, bool) {
	if si.Account == nil || !submission(si) {
		return store.LocalRecipient{}, false
	}
	acc, err := l.st.AccountByID(ctx, si.Account.ID)
	if err != nil {
		l.log.Warn("sent copy: account lookup failed", "account", si.Account.Email, "err", err)
		acc = *si.Account
	}
	if !acc.SaveSent {
		return store.LocalRecipient{}, false
	}
	name := "Sent"
	if mbs, err := l.st.Mailboxes(ctx, acc.ID); err == nil {
		for _, mb := range mbs {
			if mb.SpecialUse == store.SpecialSent {
				name = mb.Name
				break
			}
		}
	}
	return store.LocalRecipient{AccountID: acc.ID, Mailbox: name, Flags: []string{store.FlagSeen}}, true
}

// newID returns a random ID for deliveries that made no queue item.
func (l *Local) newID() string {
	var b [10]byte
	if _, err := io.ReadFull(l.rand, b[:]); err != nil {
		l.log.Error("random source failed", "err", err)
		return fmt.Sprintf("L%x", l.now().UnixNano())
	}
	return "L" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// headerSafe drops CR and LF so an address can never start a new header line.
func headerSafe(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}
