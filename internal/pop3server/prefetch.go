package pop3server

import (
	"errors"

	"pillarbox/internal/store"
)

// Read-ahead. Download clients RETR the maildrop in order, one message at
// a time, so after answering RETR n the session opens message n+1 in the
// background while the client reads its reply: the store lookup overlaps
// the round trip instead of following it.
//
// Correctness: a message expunged (over IMAP, or by the CLI) after it was
// read ahead must still get "-ERR ... removed" at RETR. The session
// subscribes to its account's change feed at login; before every RETR/TOP
// it takes the changes waiting and remembers the expunged messages of its
// maildrop. A read-ahead is only used when the feed lost nothing since
// (no Kind 0 or ChangeResync, after which the message is looked up
// afresh). The feed has every expunge by the time the call that made it
// returns, so the answer is the one a lookup at RETR time would give.

// prefetch is one message being opened ahead.
type prefetch struct {
	n    int // message number
	done chan struct{}
	r    store.MessageReader
	err  error
}

type msgKey struct {
	mailbox int64
	uid     uint32
}

// watchFeed subscribes to the account's changes (at login).
func (s *session) watchFeed() {
	s.feed = s.srv.opts.Store.Subscribe(s.account.ID)
	s.removed = make(map[msgKey]bool)
}

// drainFeed takes the waiting changes: expunges are remembered; it
// reports whether the feed lost track (then nothing read ahead is used).
func (s *session) drainFeed() (lost bool) {
	if s.feed == nil {
		return true
	}
	for _, ch := range s.feed.Take() {
		switch ch.Kind {
		case store.ChangeExpunge:
			s.removed[msgKey{ch.MailboxID, ch.UID}] = true
		case 0, store.ChangeResync:
			lost = true
		}
	}
	return lost
}

// startPrefetch opens the first message from number n on that is not
// marked deleted, in the background.
func (s *session) startPrefetch(n int) {
	for ; n <= len(s.drop.msgs) && s.drop.msgs[n-1].deleted; n++ {
	}
	if n > len(s.drop.msgs) || s.pre != nil {
		return
	}
	m := s.drop.msgs[n-1]
	p := &prefetch{n: n, done: make(chan struct{})}
	s.pre = p
	go func() {
		defer close(p.done)
		p.r, p.err = s.srv.opts.Store.OpenMessage(s.ctx, m.mailbox, m.uid)
	}()
}

// takePrefetch returns what was read ahead for message n, when that is
// what was read and it may be used; otherwise it drops any read-ahead and
// returns nil.
func (s *session) takePrefetch(n int, lost bool) *prefetch {
	p := s.pre
	if p == nil {
		return nil
	}
	s.pre = nil
	<-p.done
	if p.n == n && !lost && (p.err == nil || errors.Is(p.err, store.ErrNotFound)) {
		return p
	}
	if p.r != nil {
		p.r.Close()
	}
	return nil
}

// stopPrefetch drops the read-ahead and the subscription (session end).
func (s *session) stopPrefetch() {
	s.takePrefetch(0, true)
	if s.feed != nil {
		s.feed.Close()
		s.feed = nil
	}
}
