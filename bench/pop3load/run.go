package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"pillarbox/bench/internal/loadutil"
	"pillarbox/bench/internal/procmem"
	"sync"
	"time"
)

// runConfig is one invocation of `pop3load run`: rounds over the
// maildrops of users (one client each, all at once) on one server.
type runConfig struct {
	loadutil.Target
	msgs   int    // messages expected in each maildrop
	seed   uint64 // generator seed of the maildrops
	rounds int
	round0 int // rounds already run on these maildrops (round numbers continue from it)
	window int // RETRs in flight per client; 0: one at a time
	out    io.Writer
}

// result is one JSON line: one round of one run.
type result struct {
	Server       string   `json:"server"`
	Conc         int      `json:"conc"`
	Mode         string   `json:"mode"` // "serial" or "pipelined"
	Window       int      `json:"window,omitempty"`
	Round        int      `json:"round"`
	First        bool     `json:"first"` // the first session ever on these maildrops
	Msgs         int      `json:"msgs"`  // per maildrop
	Retrs        int      `json:"retrs"` // messages retrieved, all clients
	Bytes        int64    `json:"bytes"` // message octets retrieved (as LIST counts them)
	WireBytes    int64    `json:"wire_bytes"`
	Seconds      float64  `json:"seconds"` // RETR phase, first RETR to last byte of the last client
	MsgsPerS     float64  `json:"msgs_per_s"`
	MBPerS       float64  `json:"mb_per_s"`
	SetupSeconds float64  `json:"setup_seconds"` // connect, USER/PASS, STAT, UIDL, LIST of all clients
	PeakRSS      int64    `json:"peak_rss_kib"`  // during the RETR phase
	PeakPSS      int64    `json:"peak_pss_kib"`
	Procs        int      `json:"procs"`
	SetupRSS     int64    `json:"setup_peak_rss_kib"` // during the setup (logins)
	Errors       []string `json:"errors,omitempty"`
	Mismatch     []string `json:"mismatch,omitempty"`
}

// session is one client's state in one round.
type session struct {
	user  string
	c     *client
	sizes []int64  // LIST
	uidls []string // UIDL
	err   error
	mis   []string
	nMis  int
	retrs int
	bytes int64
}

func (s *session) mismatch(format string, args ...any) {
	s.nMis++
	if len(s.mis) < 5 {
		s.mis = append(s.mis, fmt.Sprintf(format, args...))
	}
}

// run does the rounds and writes one result per round.
func (rc *runConfig) run() error {
	want, total := expected(rc.seed, rc.msgs)
	log.Printf("%s: %d messages per maildrop, %.1f MB, %d distinct", rc.Label, rc.msgs, float64(total)/1e6, len(want))
	sm := procmem.NewSampler(rc.PIDs, 200*time.Millisecond)
	defer sm.Close()
	uidls := make([][]string, len(rc.Users)) // from the first round, per client
	enc := json.NewEncoder(rc.out)
	for r := 1; r <= rc.rounds; r++ {
		res := rc.round(r, want, total, uidls, sm)
		if err := enc.Encode(res); err != nil {
			return err
		}
		log.Printf("%s conc=%d %s round %d: %d msgs %.2f s %.1f msgs/s %.1f MB/s (setup %.2f s) RSS %.0f MiB%s",
			rc.Label, res.Conc, res.Mode, res.Round, res.Retrs, res.Seconds, res.MsgsPerS, res.MBPerS,
			res.SetupSeconds, float64(res.PeakRSS)/1024, loadutil.Problems(res.Mismatch, res.Errors))
	}
	return nil
}

// each runs f for every session that has no error yet, concurrently.
func each(sess []*session, f func(*session) error) {
	var wg sync.WaitGroup
	for _, s := range sess {
		if s.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(s); err != nil {
				s.err = err
			}
		}()
	}
	wg.Wait()
}

func (rc *runConfig) round(r int, want map[digest]int, total int64, uidls [][]string, sm *procmem.Sampler) result {
	res := result{Server: rc.Label, Conc: len(rc.Users), Mode: "serial", Round: rc.round0 + r,
		First: rc.round0+r == 1, Msgs: rc.msgs}
	if rc.window > 0 {
		res.Mode, res.Window = "pipelined", rc.window
	}
	sess := make([]*session, len(rc.Users))
	for k, u := range rc.Users {
		sess[k] = &session{user: u}
	}
	sm.Reset()
	t0 := time.Now()
	each(sess, func(s *session) error { return rc.setup(s, total) })
	res.SetupSeconds = loadutil.Round2(time.Since(t0).Seconds())
	res.SetupRSS, _, _ = sm.Peaks()
	for k, s := range sess {
		if s.err == nil {
			rc.checkUIDL(s, &uidls[k])
		}
	}

	sm.Reset()
	t0 = time.Now()
	each(sess, func(s *session) error { return rc.retrieve(s, maps.Clone(want)) })
	res.Seconds = time.Since(t0).Seconds()
	res.PeakRSS, res.PeakPSS, res.Procs = sm.Peaks()

	each(sess, func(s *session) error { return s.c.quit() })
	for k, s := range sess {
		if s.c != nil {
			s.c.Close()
			res.WireBytes += s.c.In
		}
		res.Retrs += s.retrs
		res.Bytes += s.bytes
		if s.err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("client %d (%s): %v", k, s.user, s.err))
		}
		for _, m := range s.mis {
			res.Mismatch = append(res.Mismatch, fmt.Sprintf("client %d (%s): %s", k, s.user, m))
		}
		if s.nMis > len(s.mis) {
			res.Mismatch = append(res.Mismatch, fmt.Sprintf("client %d (%s): ... %d mismatches in all", k, s.user, s.nMis))
		}
	}
	res.Errors = loadutil.CapErrors(res.Errors, 5)
	if res.Seconds > 0 {
		res.MsgsPerS = loadutil.Round2(float64(res.Retrs) / res.Seconds)
		res.MBPerS = loadutil.Round2(float64(res.Bytes) / res.Seconds / 1e6)
	}
	res.Seconds = loadutil.Round2(res.Seconds*1000) / 1000
	return res
}

// setup connects and logs in, then STAT, UIDL and LIST, checking them
// against the generated maildrop.
func (rc *runConfig) setup(s *session, total int64) error {
	c, err := dial(rc.Dial)
	if err != nil {
		return err
	}
	s.c = c
	if rc.window > 0 {
		caps, err := c.capa()
		if err != nil {
			return err
		}
		if !caps["PIPELINING"] {
			return errors.New("pipelined mode: the server does not advertise PIPELINING")
		}
	}
	if err := c.login(s.user, rc.Dial.Password); err != nil {
		return err
	}
	n, size, err := c.stat()
	if err != nil {
		return err
	}
	if n != rc.msgs || size != total {
		s.mismatch("STAT %d %d, the maildrop holds %d messages of %d octets", n, size, rc.msgs, total)
	}
	ids, err := c.uidl(n)
	if err != nil {
		return err
	}
	s.uidls = ids
	if s.sizes, err = c.list(n); err != nil {
		return err
	}
	var sum int64
	for _, z := range s.sizes {
		sum += z
	}
	if sum != size {
		s.mismatch("LIST sizes add up to %d, STAT says %d", sum, size)
	}
	return nil
}

// checkUIDL: unique-ids are unique within the maildrop and the same in
// every round (RFC 1939 7: they persist across sessions).
func (rc *runConfig) checkUIDL(s *session, first *[]string) {
	ids := s.uidls
	seen := make(map[string]bool, len(ids))
	for k, id := range ids {
		if id == "" || seen[id] {
			s.mismatch("UIDL %d: %q is empty or not unique", k+1, id)
			break
		}
		seen[id] = true
	}
	if *first == nil {
		*first = ids
		return
	}
	for k := range min(len(ids), len(*first)) {
		if ids[k] != (*first)[k] {
			s.mismatch("UIDL %d changed between rounds: %q, then %q", k+1, (*first)[k], ids[k])
			return
		}
	}
}

// retrieve RETRs every message; each must have the octet count LIST gave
// and be byte-identical to one generated message not seen yet this round.
func (rc *runConfig) retrieve(s *session, want map[digest]int) error {
	got := func(k int, n int64, crc uint32) {
		s.retrs++
		s.bytes += n
		if n != s.sizes[k-1] {
			s.mismatch("RETR %d: %d octets, LIST says %d", k, n, s.sizes[k-1])
		}
		d := digest{int(n), crc}
		if want[d] == 0 {
			s.mismatch("RETR %d: %d octets that are not a generated message (or one already retrieved)", k, n)
			return
		}
		want[d]--
	}
	if rc.window > 0 {
		return s.c.retrPipelined(len(s.sizes), rc.window, got)
	}
	for k := 1; k <= len(s.sizes); k++ {
		n, crc, err := s.c.retr(k)
		if err != nil {
			return err
		}
		got(k, n, crc)
	}
	return nil
}
