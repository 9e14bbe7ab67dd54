package imapserver

import (
	"bytes"

	"pillarbox/internal/store"
)

// The cached FETCH path. When no item needs the MIME tree itself (body
// sections with part numbers, HEADER, TEXT, MIME do), the rows (flags,
// MODSEQ, INTERNALDATE, RFC822.SIZE) are read from the store without
// their structure, which is cheap (sqlstore answers a whole mailbox in an
// unchanged state from a cache), and the rendered ENVELOPE, BODY and
// BODYSTRUCTURE come from the server's fetchCache. Only messages the
// cache lacks (or lacks a requested text of) are read with their
// structure, rendered and cached.

// loadCached returns the messages of uids (ascending) with their cache
// entries, filling what is missing.
func (f *fetcher) loadCached(uids []uint32) ([]fetchMsg, error) {
	rows, err := f.loadRows(uids, false)
	if err != nil {
		return nil, err
	}
	if len(rows) < len(uids) {
		f.gone = true
	}
	out := make([]fetchMsg, len(rows))
	for i := range rows {
		out[i].Message = rows[i]
	}
	if !f.req.structure { // no ENVELOPE, BODY, BODYSTRUCTURE: nothing cached is needed
		return out, nil
	}
	have := make([]uint32, len(out))
	for i := range out {
		have[i] = out[i].UID
	}
	ents := make([]*fetchEntry, len(out))
	f.cache.get(f.v.mb.ID, have, ents)
	var miss []int // indexes in out of messages the cache cannot serve
	for i, e := range ents {
		out[i].ent = e // a partial entry goes into the fuller copy
		if !f.serves(e) {
			miss = append(miss, i)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	return f.fill(out, miss)
}

// serves reports whether e holds every fixed item the request needs.
func (f *fetcher) serves(e *fetchEntry) bool {
	r := f.req
	return e != nil && (!r.env || e.env != nil) && (!r.bodyText || e.body != nil) && (!r.bs || e.bs != nil)
}

// fill renders the requested texts of out[miss] from their stored
// structure (read now) into new cache entries and caches them. Messages
// gone from the store meanwhile are dropped from out (f.gone).
func (f *fetcher) fill(out []fetchMsg, miss []int) ([]fetchMsg, error) {
	uids := make([]uint32, len(miss))
	for k, i := range miss {
		uids[k] = out[i].UID
	}
	rows, err := f.loadRows(uids, true)
	if err != nil {
		return nil, err
	}
	ents := make([]*fetchEntry, 0, len(miss))
	put := make([]uint32, 0, len(miss))
	j := 0
	for _, i := range miss {
		m := &out[i]
		for j < len(rows) && rows[j].UID < m.UID {
			j++
		}
		if j == len(rows) || rows[j].UID != m.UID {
			m.UID = 0 // gone from the store: dropped below
			continue
		}
		e, err := f.render(m.ent, &rows[j])
		if err != nil {
			return nil, err
		}
		m.ent = e
		ents = append(ents, e)
		put = append(put, m.UID)
	}
	f.cache.put(f.v.mb.ID, put, ents)
	if len(put) < len(miss) {
		f.gone = true
		kept := out[:0]
		for _, m := range out {
			if m.UID != 0 {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	return out, nil
}

// render returns a new entry: old's texts (if any) plus the requested
// ones rendered from the row's structure.
func (f *fetcher) render(old *fetchEntry, row *store.Message) (*fetchEntry, error) {
	e := &fetchEntry{}
	if old != nil {
		*e = *old
	}
	root, err := f.structure(row, nil)
	if err != nil {
		return nil, err
	}
	// Rendered into the scratch buffer, kept as exact-size copies.
	if f.req.env && e.env == nil {
		f.scratch = root.Env.AppendIMAP(f.scratch[:0])
		e.env = bytes.Clone(f.scratch)
	}
	if f.req.bodyText && e.body == nil {
		f.scratch = root.AppendBodyStructure(f.scratch[:0], false)
		e.body = bytes.Clone(f.scratch)
	}
	if f.req.bs && e.bs == nil {
		f.scratch = root.AppendBodyStructure(f.scratch[:0], true)
		e.bs = bytes.Clone(f.scratch)
	}
	return e, nil
}
