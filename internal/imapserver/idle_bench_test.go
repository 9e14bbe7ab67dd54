package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"pillarbox/internal/store"
)

// BenchmarkIdleMemory measures what a session in IDLE keeps: n
// connections each log in, SELECT an INBOX of 2,000 messages and enter
// IDLE; the Go heap and stacks in use (after GC) grow by "B/conn" per
// connection. PILLARBOX_IDLE_HEAP=file writes a heap profile while they
// idle. Run with -benchtime 1x:
//
//	go test -run '^$' -bench IdleMemory -benchtime 1x ./internal/imapserver
func BenchmarkIdleMemory(b *testing.B) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"starttls", true}} {
		b.Run(tc.name, func(b *testing.B) {
			env := newEnv(b, envConfig{plaintext: true, tls: tc.tls, opts: Options{
				Logger: slog.New(slog.DiscardHandler), MaxConnsPerIP: -1, MaxConnsPerAccount: -1, MaxSessions: -1}})
			cheapPassword(b, env)
			fillInbox(b, env, 2000)
			const n = 1000
			before := liveBytes()
			conns := make([]net.Conn, 0, n)
			for i := 0; i < n; i++ {
				conns = append(conns, idleConn(b, env, tc.tls))
			}
			after := liveBytes()
			if f := os.Getenv("PILLARBOX_IDLE_HEAP"); f != "" {
				w, err := os.Create(f + "." + tc.name)
				if err != nil {
					b.Fatal(err)
				}
				_ = pprof.WriteHeapProfile(w)
				w.Close()
			}
			b.ReportMetric(float64(after-before)/n, "B/conn")
			b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/conn")
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// liveBytes is the heap and stack memory in use after a collection.
func liveBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// cheapPassword gives alice a fast argon2id hash of the test password,
// so a thousand logins do not take minutes.
func cheapPassword(b *testing.B, env *testEnv) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 8, 1, 32)
	enc := base64.RawStdEncoding
	phc := fmt.Sprintf("$argon2id$v=%d$m=8,t=1,p=1$%s$%s", argon2.Version, enc.EncodeToString(salt), enc.EncodeToString(key))
	if err := env.st.SetCredentials(context.Background(), env.alice.ID, store.Credentials{PasswordHash: phc}); err != nil {
		b.Fatal(err)
	}
}

// idleConn opens a connection in IDLE (after STARTTLS when useTLS).
func idleConn(b *testing.B, env *testEnv, useTLS bool) net.Conn {
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		b.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	var conn net.Conn = nc
	br := bufio.NewReader(conn)
	step := func(cmd, want string) {
		if cmd != "" {
			if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
				b.Fatal(err)
			}
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				b.Fatalf("%s: %v", cmd, err)
			}
			if strings.HasPrefix(line, want) {
				return
			}
			if !strings.HasPrefix(line, "*") {
				b.Fatalf("%s: %q", cmd, line)
			}
		}
	}
	step("", "* OK")
	if useTLS {
		step("T STARTTLS", "T OK")
		conn = tls.Client(nc, env.clientTLS())
		br = bufio.NewReader(conn)
	}
	step(`L LOGIN alice@example.test "correct horse"`, "L OK")
	step("S SELECT INBOX", "S OK")
	step("I IDLE", "+ ")
	return conn
}
