package testkit

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLogBuffer(t *testing.T) {
	var l LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&l, "ab")
			}
		})
	}
	wg.Wait()
	if got := l.String(); got != strings.Repeat("ab", 800) {
		t.Fatalf("interleaved writes: %d bytes %q...", len(got), got[:min(len(got), 20)])
	}
	l.Reset()
	if got := l.String(); got != "" {
		t.Fatalf("after Reset: %q", got)
	}
}

func TestTLS(t *testing.T) {
	cfg, roots, certPEM := TLS(t, "mx.example.test")
	if block, _ := pem.Decode(certPEM); block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("certPEM is not a PEM certificate: %q", certPEM)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(nc, "hi\n")
			nc.Close()
		}
	}()
	for _, name := range []string{"mx.example.test", "localhost", "127.0.0.1"} {
		if err := hello(l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: name}); err != nil {
			t.Errorf("ServerName %s: %v", name, err)
		}
	}
	if err := hello(l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "other.example.test"}); err == nil {
		t.Error("a name not in the certificate verified")
	}
	if err := hello(l.Addr().String(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}); err == nil {
		t.Error("the certificate verified without its pool")
	}
}

func hello(addr string, cfg *tls.Config) error {
	nc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	line, err := bufio.NewReader(nc).ReadString('\n')
	if line != "hi\n" {
		return fmt.Errorf("read %q, %v", line, err)
	}
	return nil
}

// fatalTB records a fatal failure instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// feed runs FeedSession on a fatalTB and returns its fatal message.
func feed(t *testing.T, addr, in string, logs interface{ String() string }) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		FeedSession(f, addr, []byte(in), logs)
	}()
	<-done
	return f.msg
}

// echoServer copies each connection's input back and closes at EOF;
// got receives what each session read.
func echoServer(t *testing.T) (addr string, got chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got = make(chan string, 4)
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			var b strings.Builder
			_, _ = io.Copy(io.MultiWriter(nc, &b), nc)
			nc.Close()
			got <- b.String()
		}
	}()
	return l.Addr().String(), got
}

func TestFeedSession(t *testing.T) {
	addr, got := echoServer(t)
	var logs LogBuffer
	if msg := feed(t, addr, "a NOOP\r\n", &logs); msg != "" {
		t.Fatalf("clean session failed: %s", msg)
	}
	if in := <-got; in != "a NOOP\r\n" {
		t.Errorf("server read %q", in)
	}
	fmt.Fprintln(&logs, `level=ERROR msg=panic panic=boom`)
	if msg := feed(t, addr, "x", &logs); !strings.Contains(msg, "session panicked") {
		t.Errorf("panic in the log: fatal %q", msg)
	}
	<-got
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	if msg := feed(t, addr, "x", &LogBuffer{}); msg == "" {
		t.Error("dialling a closed port did not fail")
	}
}

func TestIsClosed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false}, {io.EOF, true}, {fmt.Errorf("read: %w", net.ErrClosed), true},
		{fmt.Errorf("read tcp: connection reset by peer"), true}, {io.ErrUnexpectedEOF, false},
	} {
		if got := IsClosed(tc.err); got != tc.want {
			t.Errorf("IsClosed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
