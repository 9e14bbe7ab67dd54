package imapserver

import (
	"maps"
	"runtime"
	"slices"
	"sync"
	"weak"

	"pillarbox/internal/store"
)

// Sharing message lists between views. A view holds 16 bytes per message
// (viewMsg), 160 KiB for a mailbox of 10,000: with thousands of sessions
// in IDLE on the same mailboxes (a user's devices, a load test), the
// copies would dominate the server's memory. Sessions that SELECT a
// mailbox in the state another view was opened in share that view's
// message list and flag tables (copy on write: a view copies them before
// its first change, ownMsgs / ownFlags). A state is recognised by the
// mailbox's HIGHESTMODSEQ and UIDNEXT, which every change to its messages
// raises. The registry holds snapshots weakly: one lives as long as a
// view uses it.

// viewSnaps is the Server's registry of shared snapshots, by mailbox ID.
// A nil *viewSnaps shares nothing. Safe for concurrent use.
type viewSnaps struct {
	mu sync.Mutex
	m  map[int64]weak.Pointer[viewSnap]
}

// viewSnap is a mailbox's message list in one state. Read-only.
type viewSnap struct {
	modseq    uint64
	uidNext   uint32
	msgs      []viewMsg // clipped: an append by a view reallocates
	flagSets  [][]string
	flagIndex map[string]uint32
}

func newViewSnaps() *viewSnaps {
	return &viewSnaps{m: map[int64]weak.Pointer[viewSnap]{}}
}

// get returns the live snapshot of mb in its current state, or nil.
func (r *viewSnaps) get(mb store.Mailbox) *viewSnap {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.m[mb.ID].Value()
	if snap == nil || snap.modseq != mb.HighestModSeq || snap.uidNext != mb.UIDNext {
		return nil
	}
	return snap
}

// put publishes v's message list as the snapshot of mb's state and
// returns it (an equal one already published wins).
func (r *viewSnaps) put(mb store.Mailbox, v *view) *viewSnap {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.m[mb.ID].Value(); old != nil && old.modseq == mb.HighestModSeq && old.uidNext == mb.UIDNext {
		return old
	}
	snap := &viewSnap{modseq: mb.HighestModSeq, uidNext: mb.UIDNext, msgs: slices.Clip(v.msgs),
		flagSets: slices.Clip(v.flagSets), flagIndex: v.flagIndex}
	wp := weak.Make(snap)
	r.m[mb.ID] = wp
	runtime.AddCleanup(snap, r.drop, dropKey{mb.ID, wp})
	return snap
}

type dropKey struct {
	id int64
	wp weak.Pointer[viewSnap]
}

// drop removes a collected snapshot's entry (unless replaced since).
func (r *viewSnaps) drop(k dropKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[k.id] == k.wp {
		delete(r.m, k.id)
	}
}

// share makes v use snap's message list and flag tables.
func (v *view) share(snap *viewSnap) {
	v.snap = snap
	v.msgs, v.flagSets, v.flagIndex = snap.msgs, snap.flagSets, snap.flagIndex
	v.sharedMsgs, v.sharedFlags = true, true
}

// ownMsgs gives v its own copy of msgs before a change.
func (v *view) ownMsgs() {
	if v.sharedMsgs {
		v.msgs = slices.Clone(v.msgs)
		v.sharedMsgs = false
		v.dropSnap()
	}
}

// ownFlags gives v its own flag tables before a new flag list is added.
func (v *view) ownFlags() {
	if v.sharedFlags {
		v.flagSets = slices.Clone(v.flagSets)
		v.flagIndex = maps.Clone(v.flagIndex)
		v.sharedFlags = false
		v.dropSnap()
	}
}

// dropSnap lets go of the snapshot once nothing of it is shared.
func (v *view) dropSnap() {
	if !v.sharedMsgs && !v.sharedFlags {
		v.snap = nil
	}
}
