package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"pillarbox/bench/internal/loadutil"
	"pillarbox/bench/internal/procmem"
	"sync"
	"sync/atomic"
	"time"
)

// idleConfig: open n connections (users round-robin), each logged in,
// INBOX SELECTed and in IDLE; then hold them and read the server's memory.
type idleConfig struct {
	loadutil.Target
	n       int
	openers int           // connections being set up at once
	hold    time.Duration // memory is sampled every second while holding
	out     io.Writer
}

// maxIdleFailures stops opening connections once that many have failed.
const maxIdleFailures = 200

func (ic *idleConfig) run() error {
	sm := procmem.NewSampler(ic.PIDs, time.Hour) // sampled by hand below
	defer sm.Close()
	sm.Reset()
	baseRSS, basePSS, _ := sm.Peaks()

	conns := make([]*client, ic.n)
	var failed atomic.Int64
	var mu sync.Mutex
	var errs []string
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < ic.openers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				c, err := ic.open(ic.Users[k%len(ic.Users)])
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(errs) < 5 {
						errs = append(errs, fmt.Sprintf("connection %d (%s): %v", k, ic.Users[k%len(ic.Users)], err))
					}
					mu.Unlock()
					continue
				}
				conns[k] = c
			}
		}()
	}
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for k := 0; k < ic.n && failed.Load() < maxIdleFailures; k++ {
		select {
		case next <- k:
		case <-progress.C:
			log.Printf("%s idle: %d/%d connections set up, %d failed", ic.Label, k, ic.n, failed.Load())
			next <- k
		}
	}
	close(next)
	wg.Wait()
	setup := time.Since(start).Seconds()
	ok := 0
	for _, c := range conns {
		if c != nil {
			ok++
		}
	}
	log.Printf("%s idle: %d connections in IDLE after %.1f s, %d failed; holding %v", ic.Label, ok, setup, failed.Load(), ic.hold)

	sm.Reset()
	for t := time.Duration(0); t < ic.hold; t += time.Second {
		time.Sleep(time.Second)
		sm.Sample()
	}
	rss, pss, procs := sm.Peaks()
	res := result{Server: ic.Label, Conc: ic.n, Step: "idle", Unit: "conns", Ops: ok,
		Seconds: loadutil.Round2(setup), PeakRSS: rss, PeakPSS: pss, Procs: procs,
		Extra: map[string]any{"failed": failed.Load(), "baseline_rss_kib": baseRSS, "baseline_pss_kib": basePSS}}
	if setup > 0 {
		res.OpsPerS = loadutil.Round2(float64(ok) / setup)
	}
	if ok > 0 {
		res.Extra["rss_kib_per_conn"] = loadutil.Round2(float64(rss-baseRSS) / float64(ok))
		res.Extra["pss_kib_per_conn"] = loadutil.Round2(float64(pss-basePSS) / float64(ok))
	}
	res.Errors = errs
	if ok < ic.n {
		res.Mismatch = append(res.Mismatch, fmt.Sprintf("only %d of %d connections reached IDLE", ok, ic.n))
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	log.Printf("%s idle: peak RSS %.0f MiB (baseline %.0f), PSS %.0f MiB, %d processes%s",
		ic.Label, float64(rss)/1024, float64(baseRSS)/1024, float64(pss)/1024, procs, loadutil.Problems(res.Mismatch, res.Errors))
	return json.NewEncoder(ic.out).Encode(res)
}

// open sets up one idling connection: LOGIN, SELECT INBOX, IDLE, and
// the "+" continuation.
func (ic *idleConfig) open(user string) (*client, error) {
	c, err := dial(ic.Dial)
	if err != nil {
		return nil, err
	}
	if err := c.run("LOGIN "+quote(user)+" "+quote(ic.Dial.Password), nil); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.run("SELECT INBOX", nil); err != nil {
		c.Close()
		return nil, err
	}
	tag := c.next()
	c.W.WriteString(tag + " IDLE\r\n")
	if err := c.W.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	for {
		line, _, err := c.readResp(nil)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("IDLE: %w", err)
		}
		if bytes.HasPrefix(line, []byte("+")) {
			break
		}
		if bytes.HasPrefix(line, []byte(tag+" ")) {
			c.Close()
			return nil, fmt.Errorf("IDLE: %s", line)
		}
	}
	_ = c.NC.SetDeadline(time.Time{})
	return c, nil
}
