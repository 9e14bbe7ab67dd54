package delivery

import (
	"context"
	"errors"

	"pillarbox/internal/addr"
	"pillarbox/internal/store"
)

// Resolution is what one RCPT resolved to; CheckRecipient returns it as the
// recipient's token and Deliver reads it back.
type Resolution struct {
	// Direct is true when the address names an account itself (exactly or
	// as "user+tag"), false when it reached accounts through aliases.
	Direct bool
	// Address is the recipient as given, canonicalised.
	Address string

	accounts []store.Account // distinct local accounts, in discovery order
	remote   []string        // distinct remote addresses, canonical
	seen     map[string]bool // addresses and aliases already expanded
	domains  map[string]bool // local-domain cache
	loop     bool            // an expansion was cut by a revisit or the depth limit
}

// Accounts returns the local accounts the recipient reaches.
func (r *Resolution) Accounts() []store.Account { return r.accounts }

// Remote returns the remote addresses the recipient reaches.
func (r *Resolution) Remote() []string { return r.remote }

func (l *Local) newResolution() *Resolution {
	return &Resolution{seen: map[string]bool{}, domains: map[string]bool{}}
}

func (r *Resolution) addAccount(acc store.Account) {
	for _, a := range r.accounts {
		if a.ID == acc.ID {
			return
		}
	}
	r.accounts = append(r.accounts, acc)
}

func (r *Resolution) addRemote(a string) {
	for _, x := range r.remote {
		if x == a {
			return
		}
	}
	r.remote = append(r.remote, a)
}

// isLocal reports whether domain is one Pillarbox receives mail for.
func (r *Resolution) isLocal(ctx context.Context, d *directory, domain string) (bool, error) {
	if v, ok := r.domains[domain]; ok {
		return v, nil
	}
	err := d.domain(ctx, domain)
	switch {
	case err == nil:
		r.domains[domain] = true
	case errors.Is(err, store.ErrNotFound):
		r.domains[domain] = false
	default:
		return false, err
	}
	return r.domains[domain], nil
}

// What a lookup matched.
type hit int

const (
	hitNone hit = iota
	hitAccount
	hitAlias
)

// expand resolves a canonical address in a local domain into r. found is
// false when nothing (account, alias, subaddress base, catch-all) matches.
func (l *Local) expand(ctx context.Context, a addr.Address, depth int, r *Resolution) (found bool, err error) {
	key := a.String()
	if r.seen[key] || depth > l.maxDepth {
		r.loop = true
		return true, nil
	}
	r.seen[key] = true
	h, err := l.accountOrAlias(ctx, key, depth, r)
	if h == hitNone && err == nil {
		if base, tag := addr.Base(a.Local); tag != "" || base != a.Local {
			bkey := addr.Address{Local: base, Domain: a.Domain}.String()
			if !r.seen[bkey] {
				r.seen[bkey] = true
				h, err = l.accountOrAlias(ctx, bkey, depth, r)
			}
		}
	}
	if err != nil {
		return false, err
	}
	if h != hitNone {
		if depth == 0 {
			r.Direct = h == hitAccount
		}
		return true, nil
	}
	catchAll := "@" + a.Domain
	if r.seen[catchAll] {
		r.loop = true
		return true, nil
	}
	al, err := l.dir.alias(ctx, catchAll)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.seen[catchAll] = true
	return true, l.expandTargets(ctx, al.Targets, depth+1, r)
}

// accountOrAlias looks key up as an account, then as an alias (expanded).
func (l *Local) accountOrAlias(ctx context.Context, key string, depth int, r *Resolution) (hit, error) {
	acc, err := l.dir.account(ctx, key)
	if err == nil {
		r.addAccount(acc)
		return hitAccount, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return hitNone, err
	}
	al, err := l.dir.alias(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return hitNone, nil
	}
	if err != nil {
		return hitNone, err
	}
	return hitAlias, l.expandTargets(ctx, al.Targets, depth+1, r)
}

// expandTargets adds an alias's targets to r: local ones recursively,
// external ones as remote recipients. Unusable targets are logged and
// skipped (the administrator's configuration, not the sender's fault).
func (l *Local) expandTargets(ctx context.Context, targets []string, depth int, r *Resolution) error {
	for _, t := range targets {
		a, err := addr.Parse(t)
		if err != nil || hasRoutingTricks(t, a) {
			l.log.Warn("alias target skipped: bad address", "target", t)
			continue
		}
		a = a.Canonical()
		local, err := r.isLocal(ctx, l.dir, a.Domain)
		if err != nil {
			return err
		}
		if !local {
			r.addRemote(a.String())
			continue
		}
		found, err := l.expand(ctx, a, depth, r)
		if err != nil {
			return err
		}
		if !found {
			l.log.Warn("alias target skipped: no such local address", "target", a.String())
		}
	}
	return nil
}
