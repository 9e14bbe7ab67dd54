package auth

import (
	"net/netip"
	"sync"
	"time"
)

// maxTracked bounds each failure table. When a table is full, entries whose
// window and lock have passed are dropped; if none has, an arbitrary
// unlocked entry goes, so memory stays bounded under a spray of names.
const maxTracked = 100_000

// record is the failure count of one account name or address.
type record struct {
	count   int
	pending int       // attempts admitted by begin and not yet ended
	start   time.Time // first failure of the current window
	until   time.Time // locked until
}

// limiter counts failures per account name and per remote address.
type limiter struct {
	mu     sync.Mutex
	freed  sync.Cond // on mu: a check ended, or the limits changed
	max    int       // <= 0: never lock
	window time.Duration
	addrs  map[netip.Prefix]*record
	names  map[string]*record
}

func newLimiter(max int, window time.Duration) *limiter {
	l := &limiter{max: max, window: window, addrs: map[netip.Prefix]*record{}, names: map[string]*record{}}
	l.freed.L = &l.mu
	return l
}

// set changes the limits. Counts and locks already recorded stay: a lock
// runs until the time set when it was taken.
func (l *limiter) set(max int, window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max, l.window = max, window
	l.freed.Broadcast()
}

// addrKey groups IPv6 addresses by /64 (one customer network), IPv4 by
// address. ok is false for an invalid address (not tracked).
func addrKey(a netip.Addr) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.WithZone("").Prefix(bits)
	return p, err == nil
}

// locked reports whether the address or the name is locked at now.
func (l *limiter) locked(now time.Time, addr netip.Addr, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.names[name]; r != nil && now.Before(r.until) {
		return true
	}
	if k, ok := addrKey(addr); ok {
		if r := l.addrs[k]; r != nil && now.Before(r.until) {
			return true
		}
	}
	return false
}

// begin admits one password check for the name from the address. It
// returns false while either is locked. While the failures of the current
// window plus the checks already in flight reach the limit, it waits for
// those checks to end (each takes one password hash): parallel connections
// get no more guesses per window than sequential ones, and honest clients
// that log in on many connections at once (a mail client's first sync, an
// office behind one NAT address) are only slowed, never refused. Every true
// must be followed by end.
func (l *limiter) begin(now time.Time, addr netip.Addr, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, kok := addrKey(addr)
	for {
		if l.max <= 0 {
			return true
		}
		nr, ar := l.names[name], (*record)(nil)
		if kok {
			ar = l.addrs[k]
		}
		if nr.lockedAt(now) || ar.lockedAt(now) {
			return false
		}
		if admit(nr, now, l.max, l.window) && admit(ar, now, l.max, l.window) {
			break
		}
		l.freed.Wait() // checks in flight fill the budget: wait for one to end
	}
	pend(l.names, name, now, 1)
	if kok {
		pend(l.addrs, k, now, 1)
	}
	return true
}

// lockedAt reports whether r (nil: no history) is locked at now.
func (r *record) lockedAt(now time.Time) bool { return r != nil && now.Before(r.until) }

// end closes a check admitted by begin (after failed or succeeded).
func (l *limiter) end(addr netip.Addr, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.names[name]; r != nil && r.pending > 0 {
		r.pending--
	}
	if k, ok := addrKey(addr); ok {
		if r := l.addrs[k]; r != nil && r.pending > 0 {
			r.pending--
		}
	}
	l.freed.Broadcast()
}

// admit says whether r (nil: no history) leaves room for one more check.
func admit(r *record, now time.Time, max int, window time.Duration) bool {
	if r == nil {
		return true
	}
	if now.Before(r.until) {
		return false
	}
	count := r.count
	if now.Sub(r.start) >= window {
		count = 0
	}
	return count+r.pending < max
}

func pend[K comparable](m map[K]*record, k K, now time.Time, n int) {
	r := m[k]
	if r == nil {
		if len(m) >= maxTracked {
			prune(m, now, 0)
		}
		r = &record{start: now}
		m[k] = r
	}
	r.pending += n
}

// failed counts a failure and reports whether it locked the name or address.
func (l *limiter) failed(now time.Time, addr netip.Addr, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max <= 0 {
		return false
	}
	locked := bump(l.names, name, now, l.max, l.window)
	if k, ok := addrKey(addr); ok {
		locked = bump(l.addrs, k, now, l.max, l.window) || locked
	}
	return locked
}

// succeeded clears the name's count (not the address's: one good login
// must not reset an attacker's budget against other names).
func (l *limiter) succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.names, name)
}

func bump[K comparable](m map[K]*record, k K, now time.Time, max int, window time.Duration) bool {
	r := m[k]
	if r == nil {
		if len(m) >= maxTracked {
			prune(m, now, window)
		}
		r = &record{start: now}
		m[k] = r
	}
	if now.Sub(r.start) >= window {
		r.count, r.start = 0, now
	}
	r.count++
	if r.count >= max {
		r.until = now.Add(window)
		r.count, r.start = 0, now
		return true
	}
	return false
}

func prune[K comparable](m map[K]*record, now time.Time, window time.Duration) {
	for k, r := range m {
		if now.Sub(r.start) >= window && !now.Before(r.until) && r.pending == 0 {
			delete(m, k)
		}
	}
	if len(m) < maxTracked {
		return
	}
	for k, r := range m {
		if !now.Before(r.until) && r.pending == 0 {
			delete(m, k)
			if len(m) < maxTracked {
				return
			}
		}
	}
}
