package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushEvery bounds how long a log line of the server may wait in the
// buffer before it is written.
const logFlushEvery = 100 * time.Millisecond

// logWriter batches the server's log lines: they go to a 64 KiB buffer
// that is written out when full, at least every logFlushEvery, and at
// Close. A busy server then makes a few write calls a second instead of one
// per line (per session event). On SIGKILL the last lines may be lost;
// SIGTERM and errors returned by serve flush them.
type logWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *logWriter) loop() {
	defer close(l.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.Flush()
		case <-l.stop:
			return
		}
	}
}

// Write buffers p (one log record: the handler writes whole lines).
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Flush writes what is buffered.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

// Close stops the timer and flushes. The logWriter must not be used after.
func (l *logWriter) Close() error {
	close(l.stop)
	<-l.done
	return l.Flush()
}
