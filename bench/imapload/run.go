package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"pillarbox/bench/internal/loadutil"
	"pillarbox/bench/internal/procmem"
	"strconv"
	"sync"
	"time"
)

// runConfig is one throughput run: conc clients, one per user, against
// one server.
type runConfig struct {
	loadutil.Target
	msgs     int    // messages expected in each INBOX
	seed     uint64 // generator seed of the INBOX messages
	logins   int    // connect+LOGIN+LOGOUT cycles per client
	selects  int    // SELECTs per client
	fetches  int    // FETCH 1:* (FLAGS UID ENVELOPE) per client
	bodies   int    // BODY.PEEK[] per client (one message per command)
	hdrRound int    // rounds over headerQueries per client
	bodRound int    // rounds over bodyQueries per client
	stores   int    // UID STORE per client (one message per command)
	appends  int    // APPENDs per client
	out      io.Writer
}

// result is one JSON line of output: one step of one run.
type result struct {
	Server   string                  `json:"server"`
	Conc     int                     `json:"conc"`
	Step     string                  `json:"step"`
	Unit     string                  `json:"unit"`
	Ops      int                     `json:"ops"`
	Seconds  float64                 `json:"seconds"`
	OpsPerS  float64                 `json:"ops_per_s"`
	Bytes    int64                   `json:"bytes"`
	MBPerS   float64                 `json:"mb_per_s"`
	Msgs     int                     `json:"msgs"`
	PeakRSS  int64                   `json:"peak_rss_kib"`
	PeakPSS  int64                   `json:"peak_pss_kib"`
	Procs    int                     `json:"procs"`
	Errors   []string                `json:"errors,omitempty"`
	Mismatch []string                `json:"mismatch,omitempty"`
	Searches map[string]searchResult `json:"searches,omitempty"`
	Extra    map[string]any          `json:"extra,omitempty"`
}

type searchResult struct {
	Got      int `json:"got"`
	Expected int `json:"expected"`
}

// session is one client's long-lived connection and what it learnt.
type session struct {
	n    int
	user string
	c    *client
	dead error    // set when the connection broke; later steps skip it
	uids []uint32 // UIDs by sequence number - 1, from the first header FETCH
}

// acc collects what one client did in one step.
type acc struct {
	ops      int
	bytes    int64
	mismatch []string
	searches map[string]int
}

func (a *acc) mis(format string, args ...any) {
	a.mismatch = append(a.mismatch, fmt.Sprintf(format, args...))
}

// step is one measured part of the workload.
type step struct {
	name, unit string
	prep       func(*session) error // untimed, before
	do         func(*session, *acc) error
	post       func(*session, *acc) error // untimed, after
}

const appendBox = "BenchAppend"

func (rc *runConfig) steps(appendMsgs [][]byte) []step {
	hdr := "FETCH 1:* (FLAGS UID ENVELOPE)"
	return []step{
		{name: "login", unit: "logins", do: rc.doLogins},
		{name: "select-first", unit: "selects", do: rc.doSelect(1)},
		{name: "fetch-hdr-first", unit: "fetches", do: rc.doHeaderFetch(hdr, 1)},
		{name: "select", unit: "selects", do: rc.doSelect(rc.selects)},
		{name: "fetch-hdr", unit: "fetches", do: rc.doHeaderFetch(hdr, rc.fetches)},
		{name: "fetch-body", unit: "msgs", do: rc.doBodies},
		{name: "search-hdr", unit: "searches", do: rc.doSearch(headerQueries, rc.hdrRound)},
		{name: "search-body", unit: "searches", do: rc.doSearch(bodyQueries, rc.bodRound)},
		{name: "store", unit: "msgs", do: rc.doStore},
		{name: "append", unit: "msgs", prep: prepAppend, do: rc.doAppend(appendMsgs), post: rc.checkAppend},
	}
}

// run executes every step with all clients, a barrier between steps, and
// writes one result per step. It returns an error only for setup.
func (rc *runConfig) run() error {
	appendMsgs := make([][]byte, rc.appends)
	for k := range appendMsgs {
		m, _, _ := genMessage(rc.seed+1000, k)
		appendMsgs[k] = crlf(m)
	}
	sm := procmem.NewSampler(rc.PIDs, 200*time.Millisecond)
	defer sm.Close()
	sess := make([]*session, len(rc.Users))
	for k, u := range rc.Users {
		sess[k] = &session{n: k, user: u}
	}
	enc := json.NewEncoder(rc.out)
	for _, st := range rc.steps(appendMsgs) {
		if st.name != "login" {
			rc.connect(sess)
		}
		res := rc.runStep(st, sess, sm)
		if err := enc.Encode(res); err != nil {
			return err
		}
		log.Printf("%s conc=%d %-16s %6d %-8s %8.2f s %10.1f/s %8.1f MB/s  RSS %.0f MiB%s",
			rc.Label, len(sess), st.name, res.Ops, res.Unit, res.Seconds, res.OpsPerS, res.MBPerS,
			float64(res.PeakRSS)/1024, loadutil.Problems(res.Mismatch, res.Errors))
	}
	for _, s := range sess {
		if s.c != nil && s.dead == nil {
			_ = s.c.logout()
		}
	}
	return nil
}

// connect opens the long-lived sessions that are not open yet (untimed).
func (rc *runConfig) connect(sess []*session) {
	for _, s := range sess {
		if s.c != nil || s.dead != nil {
			continue
		}
		c, err := dial(rc.Dial)
		if err == nil {
			if err = c.login(s.user, rc.Dial.Password); err != nil {
				c.Close()
			}
		}
		if err != nil {
			s.dead = fmt.Errorf("connect: %w", err)
			continue
		}
		s.c = c
	}
}

func (rc *runConfig) runStep(st step, sess []*session, sm *procmem.Sampler) result {
	res := result{Server: rc.Label, Conc: len(sess), Step: st.name, Unit: st.unit, Msgs: rc.msgs}
	accs := make([]acc, len(sess))
	errs := make([]error, len(sess))
	each := func(f func(*session, *acc) error) {
		var wg sync.WaitGroup
		for k, s := range sess {
			if f == nil || s.dead != nil && st.name != "login" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(s, &accs[k]); err != nil && errs[k] == nil {
					errs[k] = err
				}
			}()
		}
		wg.Wait()
	}
	if st.prep != nil {
		each(func(s *session, _ *acc) error { return st.prep(s) })
	}
	sm.Reset()
	start := time.Now()
	each(st.do)
	res.Seconds = time.Since(start).Seconds()
	res.PeakRSS, res.PeakPSS, res.Procs = sm.Peaks()
	if st.post != nil {
		each(st.post)
	}
	searches := map[string][]int{}
	for k, a := range accs {
		res.Ops += a.ops
		res.Bytes += a.bytes
		for _, m := range a.mismatch {
			res.Mismatch = append(res.Mismatch, fmt.Sprintf("client %d (%s): %s", k, sess[k].user, m))
		}
		for q, n := range a.searches {
			searches[q] = append(searches[q], n)
		}
		if errs[k] != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("client %d (%s): %v", k, sess[k].user, errs[k]))
			var no *errNo
			if !errors.As(errs[k], &no) && sess[k].dead == nil {
				sess[k].dead = errs[k]
			}
		} else if sess[k].dead != nil && st.name != "login" {
			res.Errors = append(res.Errors, fmt.Sprintf("client %d (%s): skipped: %v", k, sess[k].user, sess[k].dead))
		}
	}
	res.Errors = loadutil.CapErrors(res.Errors, 5)
	rc.summarizeSearches(&res, searches)
	if res.Seconds > 0 {
		res.OpsPerS = loadutil.Round2(float64(res.Ops) / res.Seconds)
		res.MBPerS = loadutil.Round2(float64(res.Bytes) / res.Seconds / 1e6)
	}
	res.Seconds = loadutil.Round2(res.Seconds*1000) / 1000
	return res
}

// summarizeSearches keeps one count per query; clients that disagree with
// each other or with the generator are mismatches.
func (rc *runConfig) summarizeSearches(res *result, searches map[string][]int) {
	if len(searches) == 0 {
		return
	}
	res.Searches = map[string]searchResult{}
	for _, q := range append(append([]query{}, headerQueries...), bodyQueries...) {
		got, ok := searches[q.String()]
		if !ok {
			continue
		}
		want := q.expected(rc.msgs)
		res.Searches[q.String()] = searchResult{Got: got[0], Expected: want}
		for _, g := range got {
			if g != want {
				res.Mismatch = append(res.Mismatch, fmt.Sprintf("SEARCH %s: %d hits, the generator put it in %d messages", q, g, want))
				break
			}
		}
	}
}

func (rc *runConfig) doLogins(s *session, a *acc) error {
	for k := 0; k < rc.logins; k++ {
		c, err := dial(rc.Dial)
		if err != nil {
			return err
		}
		if err := c.login(s.user, rc.Dial.Password); err != nil {
			c.Close()
			return err
		}
		if err := c.logout(); err != nil {
			return err
		}
		a.ops++
	}
	return nil
}

func (rc *runConfig) doSelect(times int) func(*session, *acc) error {
	return func(s *session, a *acc) error {
		for k := 0; k < times; k++ {
			n := -1
			before := s.c.In
			err := s.c.run("SELECT INBOX", func(line []byte, _ int64) {
				if e, ok := exists(line); ok {
					n = e
				}
			})
			a.bytes += s.c.In - before
			if err != nil {
				return err
			}
			if n != rc.msgs && k == 0 {
				a.mis("SELECT INBOX: %d EXISTS, want %d", n, rc.msgs)
			}
			a.ops++
		}
		return nil
	}
}

func (rc *runConfig) doHeaderFetch(cmd string, times int) func(*session, *acc) error {
	return func(s *session, a *acc) error {
		for k := 0; k < times; k++ {
			items := 0
			var uids []uint32
			if s.uids == nil {
				uids = make([]uint32, 0, rc.msgs)
			}
			before := s.c.In
			err := s.c.run(cmd, func(line []byte, _ int64) {
				if seq := fetchSeq(line); seq > 0 {
					items++
					if uids != nil {
						uids = append(uids, fetchUID(line))
					}
				}
			})
			a.bytes += s.c.In - before
			if err != nil {
				return err
			}
			if items != rc.msgs {
				a.mis("%s: %d FETCH responses, want %d", cmd, items, rc.msgs)
			}
			if uids != nil {
				s.uids = uids
			}
			a.ops++
		}
		return nil
	}
}

// pick returns the k-th of n UIDs spread evenly over the mailbox,
// starting at offset (a fraction of the stride).
func (s *session) pick(k, n int, offset float64) (uint32, error) {
	if len(s.uids) == 0 {
		return 0, errors.New("no UIDs: the header FETCH step failed")
	}
	stride := float64(len(s.uids)) / float64(n)
	idx := int(float64(k)*stride+offset*stride) % len(s.uids)
	return s.uids[idx], nil
}

func (rc *runConfig) doBodies(s *session, a *acc) error {
	for k := 0; k < rc.bodies; k++ {
		uid, err := s.pick(k, rc.bodies, 0)
		if err != nil {
			return err
		}
		items, lits := 0, int64(0)
		before := s.c.In
		err = s.c.run("UID FETCH "+strconv.FormatUint(uint64(uid), 10)+" (BODY.PEEK[])", func(line []byte, lit int64) {
			if fetchSeq(line) > 0 {
				items++
				lits += lit
			}
		})
		a.bytes += s.c.In - before
		if err != nil {
			return err
		}
		if items != 1 || lits < 1000 {
			a.mis("UID FETCH %d BODY.PEEK[]: %d responses, %d literal octets", uid, items, lits)
		}
		a.ops++
	}
	return nil
}

func (rc *runConfig) doSearch(qs []query, rounds int) func(*session, *acc) error {
	return func(s *session, a *acc) error {
		if a.searches == nil {
			a.searches = map[string]int{}
		}
		for r := 0; r < rounds; r++ {
			for _, q := range qs {
				n, seen := 0, false
				before := s.c.In
				err := s.c.run("UID SEARCH "+q.String(), func(line []byte, _ int64) {
					if c, ok := searchCount(line); ok {
						n, seen = n+c, true
					}
				})
				a.bytes += s.c.In - before
				if err != nil {
					return err
				}
				if !seen {
					a.mis("UID SEARCH %s: no SEARCH response", q)
				}
				a.searches[q.String()] = n
				a.ops++
			}
		}
		return nil
	}
}

func (rc *runConfig) doStore(s *session, a *acc) error {
	for k := 0; k < rc.stores; k++ {
		uid, err := s.pick(k, rc.stores, 0.5)
		if err != nil {
			return err
		}
		before := s.c.In
		err = s.c.run("UID STORE "+strconv.FormatUint(uint64(uid), 10)+` +FLAGS (\Flagged)`, nil)
		a.bytes += s.c.In - before
		if err != nil {
			return err
		}
		a.ops++
	}
	return nil
}

// prepAppend makes sure the APPEND target exists and is empty.
func prepAppend(s *session) error {
	err := s.c.run("DELETE "+appendBox, nil)
	var no *errNo
	if err != nil && !errors.As(err, &no) {
		return err
	}
	return s.c.run("CREATE "+appendBox, nil)
}

func (rc *runConfig) doAppend(msgs [][]byte) func(*session, *acc) error {
	return func(s *session, a *acc) error {
		for _, m := range msgs {
			if err := s.c.appendMsg(appendBox, `\Seen`, m); err != nil {
				return err
			}
			a.ops++
			a.bytes += int64(len(m))
		}
		return nil
	}
}

func (rc *runConfig) checkAppend(s *session, a *acc) error {
	n := -1
	err := s.c.run("STATUS "+appendBox+" (MESSAGES)", func(line []byte, _ int64) {
		var box string
		if _, err := fmt.Sscanf(string(line), "* STATUS %s (MESSAGES %d)", &box, &n); err != nil {
			n = -2
		}
	})
	if err != nil {
		return err
	}
	if n != rc.appends {
		a.mis("STATUS %s: MESSAGES %d after %d APPENDs", appendBox, n, rc.appends)
	}
	return nil
}
