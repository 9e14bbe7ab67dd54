package imapserver

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"

	"pillarbox/internal/imap"
	"pillarbox/internal/message"
)

// SEARCH and UID SEARCH: RFC 9051 6.4.4, RFC 3501 6.4.4, with ESEARCH
// result options (RFC 4731), SEARCHRES "$" and SAVE (RFC 5182), the
// MODSEQ key (RFC 7162 3.1.5) and UTF-8 (RFC 6855 3).
//
//	search = ["UID" SP] "SEARCH" [SP "RETURN" SP "(" [opt *(SP opt)] ")"]
//	         SP ["CHARSET" SP charset SP] search-key *(SP search-key)
//
// The command file is split in three: this file parses the result options
// and the charset and writes the response; search_parse.go turns the keys
// into a tree (skey); search_eval.go evaluates it over the selected
// mailbox, cheap keys (flags, sizes, dates, sets) before expensive ones
// (envelope fields, header fields, full text).
//
// Responses:
//   - "* SEARCH n..." (RFC 3501 7.2.5) for a rev1 client without RETURN,
//     with " (MODSEQ m)" after the numbers when a MODSEQ key was used and
//     something matched (RFC 7162 3.1.5);
//   - "* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]
//     [MODSEQ m]" (RFC 4731, RFC 9051 7.3.4) when RETURN was given or the
//     client enabled IMAP4rev2 (then no RETURN means RETURN (ALL)); MIN,
//     MAX and ALL are left out when nothing matched; RETURN (SAVE) alone
//     sends no ESEARCH at all (RFC 5182 2.1).
//
// "$" saves UIDs, so it survives expunges; a failed SEARCH with SAVE
// empties it (RFC 5182 2.1).

// searchReturn holds the result options of one SEARCH.
type searchReturn struct {
	esearch                    bool // answer with ESEARCH
	min, max, all, count, save bool
}

// Limits of one SEARCH beyond the decoder's (nesting of parentheses,
// number of values).
const (
	maxSearchDepth    = 32   // nesting of NOT, OR and parenthesised lists
	maxSearchKeys     = 1000 // search keys in one command
	maxSearchTextKeys = 16   // BODY and TEXT keys (each reads the full-text index)
)

// searchCharsets are named in NO [BADCHARSET (...)]; any charset of the
// WHATWG Encoding Standard is accepted as well.
const searchCharsets = "UTF-8 US-ASCII ISO-8859-1 ISO-8859-15 WINDOWS-1252"

// cmdSearch: SEARCH and UID SEARCH (RFC 9051 6.4.4, 6.4.9), with the
// Server's search cache (cmdSearchShared).
func cmdSearch(s *session, c *imap.Command, cache *searchCache) error {
	uidMode := c.Name == "UID SEARCH"
	ret, args, err := parseSearchReturn(c.Args)
	if err == nil {
		if !ret.esearch && s.rev2 { // RFC 9051 6.4.4: ESEARCH, as RETURN (ALL)
			ret.esearch, ret.all = true, true
		}
		err = s.search(c, uidMode, ret, args, cache)
	}
	if err != nil && ret.save {
		s.sel.setSearchRes(nil) // RFC 5182 2.1: a failed SAVE leaves "$" empty
	}
	return err
}

// search runs a parsed SEARCH and writes its response.
func (s *session) search(c *imap.Command, uidMode bool, ret searchReturn, args []imap.Value, cache *searchCache) error {
	conv, args, err := s.searchCharset(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return bad("", "Missing search keys")
	}
	p := &searchParser{v: s.sel, conv: conv}
	root, err := p.program(args)
	if err != nil {
		return err
	}
	if p.modseq {
		s.enableCondstore() // RFC 7162 3.1: a CONDSTORE-enabling command
	}
	hits, err := s.evalSearch(root, p, cache)
	if err != nil {
		return err
	}
	if ret.save {
		s.sel.setSearchRes(savedUIDs(hits, ret))
	}
	s.writeSearch(c.Tag, uidMode, ret, hits, p.modseq)
	return nil
}

// parseSearchReturn parses an optional "RETURN (options)" (RFC 4731 3.1,
// RFC 5182 2.1) and returns the arguments after it.
func parseSearchReturn(args []imap.Value) (searchReturn, []imap.Value, error) {
	var ret searchReturn
	if len(args) == 0 || args[0].Kind != imap.KindAtom || upper(args[0].Atom) != "RETURN" {
		return ret, args, nil
	}
	if len(args) < 2 {
		return ret, args, bad("", "RETURN needs a list of result options")
	}
	opts, err := atomList(args[1])
	if err != nil {
		return ret, args, err
	}
	ret.esearch = true
	for _, o := range opts {
		switch o {
		case "MIN":
			ret.min = true
		case "MAX":
			ret.max = true
		case "ALL":
			ret.all = true
		case "COUNT":
			ret.count = true
		case "SAVE":
			ret.save = true
		default:
			return ret, args, bad("", "Unknown search result option "+o)
		}
	}
	if len(opts) == 0 { // RFC 4731 3.1: RETURN () is RETURN (ALL)
		ret.all = true
	}
	return ret, args[2:], nil
}

// searchCharset parses an optional "CHARSET name" and returns the
// function that turns the command's search strings into UTF-8.
// RFC 9051 6.4.4: an unknown charset is NO [BADCHARSET]; RFC 6855 3: with
// UTF8=ACCEPT enabled a CHARSET is BAD.
func (s *session) searchCharset(args []imap.Value) (func([]byte) (string, error), []imap.Value, error) {
	if len(args) == 0 || args[0].Kind != imap.KindAtom || upper(args[0].Atom) != "CHARSET" {
		if s.utf8 {
			return strictUTF8, args, nil
		}
		return lenientText, args, nil
	}
	if s.utf8 {
		return nil, nil, bad("", "CHARSET is not allowed once UTF8=ACCEPT is enabled")
	}
	if len(args) < 2 {
		return nil, nil, bad("", "CHARSET needs a name")
	}
	name, err := astring(args[1])
	if err != nil {
		return nil, nil, err
	}
	args = args[2:]
	switch strings.ToLower(name) {
	case "utf-8", "utf8":
		return strictUTF8, args, nil
	case "us-ascii", "ascii":
		return lenientText, args, nil
	}
	enc, err := htmlindex.Get(name)
	if err != nil {
		return nil, nil, no("BADCHARSET ("+searchCharsets+")", "Unsupported charset")
	}
	return func(b []byte) (string, error) {
		out, err := enc.NewDecoder().Bytes(b)
		if err != nil {
			return "", bad("", "Search string is not valid "+name)
		}
		return string(out), nil
	}, args, nil
}

// strictUTF8 takes a search string that must be UTF-8.
func strictUTF8(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", bad("", "Search string is not valid UTF-8")
	}
	return string(b), nil
}

// lenientText takes a search string without a (usable) charset label:
// UTF-8 when it is valid UTF-8 (clients send it without CHARSET), else
// every byte as Latin-1 (what clients that send 8-bit text without
// UTF-8 mostly mean).
func lenientText(b []byte) (string, error) {
	return message.LenientUTF8(string(b)), nil
}

// searchHit is one matching message.
type searchHit struct {
	seq, uid uint32
	modseq   uint64
}

// savedUIDs is what SAVE keeps (RFC 5182 2.1): with MIN and/or MAX but
// neither ALL nor COUNT, only those messages; else every match.
func savedUIDs(hits []searchHit, ret searchReturn) []uint32 {
	if len(hits) == 0 {
		return nil
	}
	if (ret.min || ret.max) && !ret.all && !ret.count {
		var out []uint32
		if ret.min {
			out = append(out, hits[0].uid)
		}
		if ret.max && (!ret.min || len(hits) > 1) {
			out = append(out, hits[len(hits)-1].uid)
		}
		return out
	}
	out := make([]uint32, len(hits))
	for i, h := range hits {
		out[i] = h.uid
	}
	return out
}

// writeSearch writes the SEARCH or ESEARCH response.
func (s *session) writeSearch(tag string, uidMode bool, ret searchReturn, hits []searchHit, modseq bool) {
	num := func(h searchHit) uint64 {
		if uidMode {
			return uint64(h.uid)
		}
		return uint64(h.seq)
	}
	w := s.w
	if !ret.esearch {
		w.Raw("* SEARCH")
		for _, h := range hits {
			w.SP().Number(num(h))
		}
		if modseq && len(hits) > 0 {
			w.Raw(" (MODSEQ ").Number(highestModSeq(hits)).Raw(")")
		}
		w.CRLF()
		return
	}
	if ret.save && !ret.min && !ret.max && !ret.all && !ret.count {
		return // RFC 5182 2.1: SAVE alone suppresses the ESEARCH response
	}
	w.Raw("* ESEARCH (TAG ").String(tag).Raw(")")
	if uidMode {
		w.Raw(" UID")
	}
	if len(hits) > 0 {
		if ret.min {
			w.Raw(" MIN ").Number(num(hits[0]))
		}
		if ret.max {
			w.Raw(" MAX ").Number(num(hits[len(hits)-1]))
		}
	}
	if ret.count {
		w.Raw(" COUNT ").Number(uint64(len(hits)))
	}
	if ret.all && len(hits) > 0 {
		w.Raw(" ALL ").Raw(formatHits(hits, uidMode))
	}
	if modseq && len(hits) > 0 {
		w.Raw(" MODSEQ ").Number(esearchModSeq(hits, ret))
	}
	w.CRLF()
}

// esearchModSeq is the MODSEQ of an ESEARCH response (RFC 7162 3.1.5):
// the highest of the messages returned: only the MIN and MAX messages
// when neither ALL nor COUNT was asked for.
func esearchModSeq(hits []searchHit, ret searchReturn) uint64 {
	if (ret.min || ret.max) && !ret.all && !ret.count {
		var m uint64
		if ret.min {
			m = hits[0].modseq
		}
		if ret.max {
			m = max(m, hits[len(hits)-1].modseq)
		}
		return m
	}
	return highestModSeq(hits)
}

func highestModSeq(hits []searchHit) uint64 {
	var m uint64
	for _, h := range hits {
		m = max(m, h.modseq)
	}
	return m
}

// formatHits formats ascending numbers as a compact sequence set.
func formatHits(hits []searchHit, uidMode bool) string {
	nums := make([]uint32, len(hits))
	for i, h := range hits {
		if uidMode {
			nums[i] = h.uid
		} else {
			nums[i] = h.seq
		}
	}
	return imap.FormatUIDs(nums)
}
