package delivery

import (
	"context"
	"errors"
	"sync"

	"pillarbox/internal/store"
)

// generationer is implemented by stores that can tell cheaply whether
// domains, accounts or aliases changed (sqlstore: AdminGeneration).
type generationer interface {
	AdminGeneration() (uint64, error)
}

// maxCached bounds each lookup map; past it the map starts over (lookups
// of unknown recipients by a harvester must not grow memory).
const maxCached = 20000

// directory answers the Domain, Account and Alias lookups of recipient
// resolution, from a cache while the store's admin generation is
// unchanged: every RCPT otherwise costs several SQLite read transactions.
// An Account from the cache may have a stale UsedBytes: quota checks read
// the account again (checkQuota). Without a generationer every lookup goes
// to the store.
type directory struct {
	st  store.Store
	gen generationer

	mu       sync.Mutex
	cur      uint64
	valid    bool
	domains  map[string]result[store.Domain]
	accounts map[string]result[store.Account]
	aliases  map[string]result[store.Alias]
}

// result is a cached lookup: a value, or store.ErrNotFound.
type result[V any] struct {
	v   V
	err error
}

func newDirectory(st store.Store) *directory {
	d := &directory{st: st}
	d.gen, _ = st.(generationer)
	d.reset()
	return d
}

func (d *directory) reset() {
	d.domains = map[string]result[store.Domain]{}
	d.accounts = map[string]result[store.Account]{}
	d.aliases = map[string]result[store.Alias]{}
}

// fresh drops the cache if the admin data changed and reports whether
// caching is possible at all. d.mu is held.
func (d *directory) fresh() bool {
	if d.gen == nil {
		return false
	}
	g, err := d.gen.AdminGeneration()
	if err != nil {
		d.valid = false
		return false
	}
	if !d.valid || g != d.cur {
		d.reset()
		d.cur, d.valid = g, true
	}
	return true
}

// cached answers key from *m, or from fetch (then remembered when it
// found the key or definitely did not, and the generation did not move
// meanwhile).
func cached[V any](ctx context.Context, d *directory, m *map[string]result[V], key string,
	fetch func(context.Context, string) (V, error)) (V, error) {
	d.mu.Lock()
	ok := d.fresh()
	if ok {
		if r, hit := (*m)[key]; hit {
			d.mu.Unlock()
			return r.v, r.err
		}
	}
	gen := d.cur
	d.mu.Unlock()
	v, err := fetch(ctx, key)
	if ok && (err == nil || errors.Is(err, store.ErrNotFound)) {
		d.mu.Lock()
		if d.valid && d.cur == gen {
			if len(*m) >= maxCached {
				*m = map[string]result[V]{}
			}
			(*m)[key] = result[V]{v, err}
		}
		d.mu.Unlock()
	}
	return v, err
}

func (d *directory) domain(ctx context.Context, name string) error {
	_, err := cached(ctx, d, &d.domains, name, d.st.Domain)
	return err
}

func (d *directory) account(ctx context.Context, email string) (store.Account, error) {
	return cached(ctx, d, &d.accounts, email, d.st.Account)
}

func (d *directory) alias(ctx context.Context, address string) (store.Alias, error) {
	return cached(ctx, d, &d.aliases, address, d.st.Alias)
}
