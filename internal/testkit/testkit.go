// Package testkit holds helpers shared by the servers' tests: a log sink,
// a self-signed TLS setup and the session fuzzers' body. It is imported
// only by _test.go files, never by production code.
package testkit

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"pillarbox/internal/certs"
)

// LogBuffer is a bytes buffer safe for concurrent use, for slog handlers
// whose output a test inspects.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Reset empties the buffer.
func (l *LogBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// TLS returns a server config with a fresh self-signed certificate made by
// package certs (as the server makes its own; SANs hostname, localhost,
// 127.0.0.1 and ::1), a pool trusting it, and the certificate as PEM.
func TLS(t testing.TB, hostname string) (cfg *tls.Config, roots *x509.CertPool, certPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := certs.GenerateSelfSigned(hostname, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, roots, certPEM
}

// IsClosed reports whether err means the connection was closed (EOF,
// closed, or reset by the peer).
func IsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
}

// FeedSession is a session fuzzer's body: it dials addr, writes in, closes
// its writing half and waits for the server to end the session, draining
// the replies meanwhile. It fails t if the session does not end (within
// 10 s) with the connection closed, or if logs hold a recovered panic
// ("msg=panic").
func FeedSession(t testing.TB, addr string, in []byte, logs interface{ String() string }) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, nc)
		read <- err
	}()
	if _, err := nc.Write(in); err == nil {
		_ = nc.(*net.TCPConn).CloseWrite() // the session ends at EOF whatever in left unfinished
	}
	if err := <-read; err != nil && !IsClosed(err) {
		t.Fatalf("session did not end: %v", err)
	}
	if s := logs.String(); strings.Contains(s, "msg=panic") {
		t.Fatalf("session panicked:\n%s", s)
	}
}
