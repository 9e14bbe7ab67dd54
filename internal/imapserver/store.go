package imapserver

import (
	"errors"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// storeReq is a parsed STORE / UID STORE command.
type storeReq struct {
	set       imap.SeqSet
	op        store.FlagOp
	silent    bool
	flags     []string
	condition bool   // (UNCHANGEDSINCE n) was given (RFC 7162 3.1.3)
	since     uint64 // its value
}

// parseStore parses "set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags"
// (RFC 9051 6.4.6 store-att-flags: a flag list or flags separated by
// spaces; RFC 7162 3.1.3 store-modifiers).
func parseStore(c *imap.Command) (storeReq, error) {
	var r storeReq
	if err := wantArgs(c, 3, -1); err != nil {
		return r, err
	}
	set, err := seqSetArg(c.Args[0])
	if err != nil {
		return r, err
	}
	r.set = set
	rest := c.Args[1:]
	if rest[0].Kind == imap.KindList {
		if err := r.parseModifiers(rest[0].List); err != nil {
			return r, err
		}
		rest = rest[1:]
	}
	if len(rest) < 2 {
		return r, bad("", "STORE needs a data item and flags")
	}
	item, err := atomArg(rest[0])
	if err != nil {
		return r, err
	}
	if r.silent = strings.HasSuffix(item, ".SILENT"); r.silent {
		item = strings.TrimSuffix(item, ".SILENT")
	}
	switch item {
	case "FLAGS":
		r.op = store.FlagReplace
	case "+FLAGS":
		r.op = store.FlagAdd
	case "-FLAGS":
		r.op = store.FlagRemove
	default:
		return r, bad("", "Unknown STORE data item "+echoToken(item))
	}
	vals := rest[1:]
	if len(vals) == 1 && vals[0].Kind == imap.KindList {
		vals = vals[0].List
	}
	r.flags, err = parseFlags(vals, false)
	return r, err
}

// parseModifiers parses the STORE modifiers; only UNCHANGEDSINCE exists.
func (r *storeReq) parseModifiers(items []imap.Value) error {
	if len(items) == 0 {
		return bad("", "Empty STORE modifier list")
	}
	for i := 0; i < len(items); i += 2 {
		name, err := atomArg(items[i])
		if err != nil {
			return err
		}
		if name != "UNCHANGEDSINCE" || r.condition || i+1 >= len(items) {
			return bad("", "Unknown, repeated or incomplete STORE modifier "+echoToken(name))
		}
		if r.since, err = numberArg(items[i+1], 63); err != nil {
			return err
		}
		r.condition = true
	}
	return nil
}

// seqSetArg parses a sequence set or UID set argument.
func seqSetArg(v imap.Value) (imap.SeqSet, error) {
	if v.Kind != imap.KindAtom {
		return imap.SeqSet{}, bad("", "Expected a sequence set")
	}
	set, err := imap.ParseSeqSet(v.Atom)
	if err != nil {
		return imap.SeqSet{}, bad("", "Invalid sequence set")
	}
	return set, nil
}

// parseFlags checks flags as sent in STORE and APPEND (RFC 9051 9 flag):
// system flags in any case are spelled canonically, an unknown system
// flag is BAD, and so is \Recent in STORE (it cannot be stored; RFC 3501
// 2.3.2); APPEND ignores \Recent, which some rev1 clients copy from the
// FETCH of another server. Keywords must be atoms (no atom-specials, no
// 8-bit bytes). Duplicates are dropped.
func parseFlags(vals []imap.Value, forAppend bool) ([]string, error) {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if v.Kind != imap.KindAtom || v.HasSection {
			return nil, bad("", "Flags must be atoms")
		}
		f := v.Atom
		if strings.HasPrefix(f, `\`) {
			if strings.EqualFold(f, `\Recent`) {
				if forAppend {
					continue
				}
				return nil, bad("", `\Recent cannot be stored`)
			}
			i := -1
			for j, sf := range systemFlags {
				if strings.EqualFold(sf, f) {
					i = j
				}
			}
			if i < 0 {
				return nil, bad("", "Unknown system flag "+echoToken(f))
			}
			f = systemFlags[i]
		} else if !validKeywordAtom(f) {
			return nil, bad("", "Invalid keyword")
		}
		if !hasFlagFold(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// validKeywordAtom reports whether k is an atom (RFC 9051 9 flag-keyword).
func validKeywordAtom(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func hasFlagFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// echoToken bounds a client-sent token before it is echoed in a reply.
func echoToken(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > ' ' && c < 0x7f && c != ']' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cmdStore: STORE and UID STORE, RFC 9051 6.4.6, with UNCHANGEDSINCE
// (RFC 7162 3.1.3). Unless .SILENT, an untagged FETCH (FLAGS) answers
// for every message of the set that exists and passed the UNCHANGEDSINCE
// test, changed or not ("as if a FETCH of those flags was done"). With
// CONDSTORE on, .SILENT still reports the new MODSEQ of every changed
// message (RFC 7162 3.1.3: "(UID u MODSEQ (m))"). Messages that failed
// the test are listed in OK [MODIFIED set] (sequence numbers for STORE,
// UIDs for UID STORE). Expunged messages whose expunge is not reported
// yet are skipped. A read-only mailbox gives NO.
func cmdStore(s *session, c *imap.Command) error {
	r, err := parseStore(c)
	if err != nil {
		return err
	}
	v := s.sel
	uidMode := c.Name == "UID STORE"
	uids, err := v.resolve(r.set, uidMode)
	if err != nil {
		return err
	}
	if v.readOnly {
		return no("CANNOT", "Mailbox is read-only")
	}
	if r.condition {
		s.enableCondstore() // RFC 7162 3.1: a CONDSTORE enabling command
	}
	live := uids[:0:0]
	for _, u := range uids {
		if !v.isExpunged(u) {
			live = append(live, u)
		}
	}
	updated, failed, err := s.storeFlags(v, live, r)
	if err != nil {
		return err
	}
	s.writeStoreResults(v, live, r, updated, failed)
	if len(failed) > 0 {
		nums := failed
		if !uidMode {
			nums = make([]uint32, 0, len(failed))
			for _, u := range failed {
				if seq, ok := v.uidToSeq(u); ok {
					nums = append(nums, seq)
				}
			}
		}
		s.okCode = "MODIFIED " + imap.FormatUIDs(nums)
		s.okText = "Conditional STORE failed"
	}
	return nil
}

// storeFlags changes the flags in the store. UNCHANGEDSINCE 0 fails for
// every message (RFC 7162 3.1.3: every message has a MODSEQ above 0).
func (s *session) storeFlags(v *view, uids []uint32, r storeReq) ([]store.FlagUpdate, []uint32, error) {
	if len(uids) == 0 {
		return nil, nil, nil
	}
	if r.condition && r.since == 0 {
		return nil, uids, nil
	}
	updated, failed, err := s.srv.opts.Store.StoreFlags(s.ctx, v.mb.ID, uids, r.op, r.flags, r.since)
	switch {
	case errors.Is(err, store.ErrInvalidName):
		return nil, nil, bad("", "Invalid flag")
	case err != nil:
		return nil, nil, storeErr(err)
	}
	return updated, failed, nil
}

// writeStoreResults records the session's own flag changes in the view
// and writes the untagged FETCH responses of a STORE.
func (s *session) writeStoreResults(v *view, live []uint32, r storeReq, updated []store.FlagUpdate, failed []uint32) {
	newKW := false
	changed := make(map[uint32]uint64, len(updated))
	for _, u := range updated {
		v.noteFlags(u.UID, u.ModSeq, u.Flags)
		newKW = v.newKeywords(u.Flags) || newKW
		changed[u.UID] = u.ModSeq
	}
	// Take what other sessions changed meanwhile, so the flags reported
	// are the latest and flush does not repeat them.
	v.poll()
	isFailed := make(map[uint32]bool, len(failed))
	for _, u := range failed {
		isFailed[u] = true
	}
	report := make([]int, 0, len(live)) // indexes in v.msgs
	for _, u := range live {
		if i, ok := v.index(u); ok && !isFailed[u] && !v.isExpunged(u) {
			report = append(report, i)
			if !r.silent {
				newKW = v.newKeywords(v.flagsOf(v.msgs[i])) || newKW
			}
		}
	}
	if newKW {
		v.writeFlags(s) // RFC 9051 7.3.5: new keywords before their use
	}
	for _, i := range report {
		m := v.msgs[i]
		if !r.silent {
			v.writeFetchFlags(s, i)
			v.noteFlags(m.uid, m.modseq, v.flagsOf(m)) // reported: no longer dirty
			continue
		}
		if ms, ok := changed[m.uid]; ok && s.condstore {
			s.w.Raw("* ").Number(uint64(i + 1)).Raw(" FETCH (UID ").Number(uint64(m.uid)).
				Raw(" MODSEQ (").Number(ms).Raw("))").CRLF()
		}
	}
}
