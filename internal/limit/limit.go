// Package limit holds limits shared by several Pillarbox endpoints. It is a
// leaf package (standard library only) so every endpoint may import it.
//
// Counter bounds concurrent sessions over all endpoints (config
// limits.sessions): the app creates one and hands it to every SMTP (and
// later IMAP and POP3) server; each server takes a slot when it admits a
// connection and gives it back when the connection ends.
//
// Invariants: InUse never goes below zero; SetMax never ends sessions that
// hold a slot, it only refuses new ones until enough have ended. Nothing
// is kept on disk.
package limit

import "sync"

// Counter counts slots in use against a maximum. It is safe for
// concurrent use. The zero value is an unlimited counter.
type Counter struct {
	mu  sync.Mutex
	max int // <= 0: unlimited
	n   int
}

// NewCounter returns a counter allowing max slots at once; max <= 0 means
// unlimited.
func NewCounter(max int) *Counter {
	return &Counter{max: max}
}

// TryAcquire takes a slot and reports true, or reports false when max
// slots are in use already.
func (c *Counter) TryAcquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n >= c.max {
		return false
	}
	c.n++
	return true
}

// Release gives back a slot taken by TryAcquire. A Release without a
// matching TryAcquire is ignored rather than driving the count negative.
func (c *Counter) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.n--
	}
}

// SetMax changes the maximum (<= 0: unlimited). Slots in use are kept even
// when there are more than the new maximum; TryAcquire fails until enough
// of them are released.
func (c *Counter) SetMax(max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max
}

// Max returns the current maximum (<= 0: unlimited).
func (c *Counter) Max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max
}

// InUse returns the number of slots taken.
func (c *Counter) InUse() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
