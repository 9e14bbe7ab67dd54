// Package procmem samples the memory of server process trees from /proc
// for the bench load drivers (imapload, pop3load): summed RSS, summed PSS
// and the number of processes, with peaks since the last reset. Linux
// only; nothing is written anywhere.
package procmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sampler reads the memory of the server's process trees (the root PIDs
// and all their descendants) from /proc every interval and keeps the
// peaks since the last reset: summed RSS, summed PSS (shared pages split
// between the processes sharing them, /proc/PID/smaps_rollup) and the
// number of processes. Same method as bench/lib/measure.py.
type Sampler struct {
	roots []int

	mu               sync.Mutex
	peakRSS, peakPSS int64 // KiB
	peakProcs        int
	lastRSS, lastPSS int64 // the latest reading
	lastProcs        int
	stop             chan struct{}
	done             chan struct{}
	interval         time.Duration
}

func NewSampler(roots []int, interval time.Duration) *Sampler {
	s := &Sampler{roots: roots, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	if len(roots) == 0 {
		close(s.done)
		return s
	}
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// Sample takes one reading now and folds it into the peaks.
func (s *Sampler) Sample() {
	if len(s.roots) == 0 {
		return
	}
	pids := descendants(s.roots)
	var rss, pss int64
	for _, p := range pids {
		r, ps := memKiB(p)
		rss += r
		pss += ps
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastRSS, s.lastPSS, s.lastProcs = rss, pss, len(pids)
	s.peakRSS = max(s.peakRSS, rss)
	s.peakPSS = max(s.peakPSS, pss)
	s.peakProcs = max(s.peakProcs, len(pids))
}

// Reset starts a new peak window with a fresh reading.
func (s *Sampler) Reset() {
	s.mu.Lock()
	s.peakRSS, s.peakPSS, s.peakProcs = 0, 0, 0
	s.mu.Unlock()
	s.Sample()
}

// Peaks returns the peaks (KiB, KiB, count) since the last reset, after
// one more reading.
func (s *Sampler) Peaks() (rss, pss int64, procs int) {
	s.Sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakRSS, s.peakPSS, s.peakProcs
}

// Close stops the sampling goroutine.
func (s *Sampler) Close() {
	if len(s.roots) > 0 {
		close(s.stop)
	}
	<-s.done
}

// descendants returns the roots that exist and every process below them.
func descendants(roots []int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// comm may hold spaces and parentheses: split after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	seen := map[int]bool{}
	var out []int
	stack := []int{}
	for _, r := range roots {
		if _, err := os.Stat("/proc/" + strconv.Itoa(r)); err == nil {
			stack = append(stack, r)
		}
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		stack = append(stack, children[p]...)
	}
	return out
}

// memKiB returns (RSS, PSS) of one process in KiB, (0, 0) if it is gone.
func memKiB(pid int) (rss, pss int64) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "Rss:"):
			dst = &rss
		case strings.HasPrefix(line, "Pss:"):
			dst = &pss
		default:
			continue
		}
		if fs := strings.Fields(line); len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return rss, pss
}
