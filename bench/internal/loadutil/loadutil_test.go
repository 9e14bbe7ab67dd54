package loadutil

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// fakeServer accepts one connection on 127.0.0.1, sends greeting and,
// when it reads "UPGRADE", answers "GO" and starts TLS; then it answers
// every line with "echo <line>".
func fakeServer(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cert := selfSigned(t)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		var c net.Conn = nc
		r := bufio.NewReader(c)
		c.Write([]byte(greeting + "\r\n"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "UPGRADE" {
				c.Write([]byte("GO\r\n"))
				tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
				if tc.Handshake() != nil {
					return
				}
				c, r = tc, bufio.NewReader(tc)
				continue
			}
			c.Write([]byte("echo " + line + "\r\n"))
		}
	}()
	return ln.Addr().String()
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.bench.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"mx.bench.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func upgrade(c *Conn) error {
	c.W.WriteString("UPGRADE\r\n")
	if err := c.W.Flush(); err != nil {
		return err
	}
	l, err := c.ReadLine()
	if err != nil || string(l) != "GO" {
		return fmt.Errorf("upgrade: %q, %v", l, err)
	}
	return nil
}

func echo(t *testing.T, c *Conn, line string) {
	t.Helper()
	c.W.WriteString(line + "\r\n")
	if err := c.W.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadLine()
	if err != nil || string(got) != "echo "+line {
		t.Fatalf("ReadLine = %q, %v; want echo %s", got, err, line)
	}
}

func TestDialPlainAndUpgrade(t *testing.T) {
	for _, mode := range []string{"plain", "up"} {
		o := DialOpts{Addr: fakeServer(t, "+OK hi"), TLS: mode, Timeout: 10 * time.Second, ReadBuf: 16}
		c, err := Dial(o, "+OK", "up", upgrade)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		_, isTLS := c.NC.(*tls.Conn)
		if isTLS != (mode == "up") {
			t.Errorf("%s: TLS connection %v", mode, isTLS)
		}
		long := strings.Repeat("x", 100) // longer than the 16-byte read buffer
		echo(t, c, long)
		if want := int64(len("+OK hi\r\n") + len("echo "+long+"\r\n")); mode == "plain" && c.In != want {
			t.Errorf("In = %d, want %d", c.In, want)
		}
		c.Close()
	}
}

func TestDialRefusals(t *testing.T) {
	o := DialOpts{Addr: fakeServer(t, "-ERR busy"), TLS: "plain", Timeout: 10 * time.Second}
	if _, err := Dial(o, "+OK", "stls", upgrade); err == nil || !strings.Contains(err.Error(), "greeting") {
		t.Errorf("bad greeting: %v", err)
	}
	o = DialOpts{Addr: fakeServer(t, "+OK"), TLS: "ssl", Timeout: 10 * time.Second}
	if _, err := Dial(o, "+OK", "stls", upgrade); err == nil || !strings.Contains(err.Error(), "unknown -tls mode") {
		t.Errorf("unknown mode: %v", err)
	}
}

func TestFlagsTarget(t *testing.T) {
	parse := func(args ...string) (Target, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		var f Flags
		f.Register(fs, "127.0.0.1:1", "plain", "", "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f.Target()
	}
	tg, err := parse("-users", "a,b", "-password", "p", "-pids", "7,,9", "-label", "L")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tg.Users, " ") != "a b" || len(tg.PIDs) != 2 || tg.PIDs[1] != 9 || tg.Label != "L" ||
		tg.Dial.Addr != "127.0.0.1:1" || tg.Dial.TLS != "plain" || tg.Dial.Password != "p" || tg.Dial.Timeout != 10*time.Minute {
		t.Errorf("target %+v", tg)
	}
	if _, err := parse("-users", "a"); err == nil {
		t.Error("no error without -password")
	}
	if _, err := parse("-users", "a", "-password", "p", "-pids", "x"); err == nil {
		t.Error("no error for -pids x")
	}
}

func TestArgon2idPHC(t *testing.T) {
	phc, err := argon2idPHC("secret")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[1] != "argon2id" || f[3] != "m=32768,t=2,p=1" {
		t.Fatalf("PHC %q", phc)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(f[4])
	key, err2 := base64.RawStdEncoding.DecodeString(f[5])
	if err1 != nil || err2 != nil || len(salt) != 16 {
		t.Fatalf("PHC %q", phc)
	}
	if !bytes.Equal(argon2.IDKey([]byte("secret"), salt, 2, 32*1024, 1, 32), key) {
		t.Error("key does not match the password")
	}
}

func TestWriteMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := MakeMaildir(""); err == nil {
		t.Error("no error for an empty -dir")
	}
	if err := MakeMaildir(dir); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteMessage(dir, "m1:2,", []byte("x\r\n"), date); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "cur", "m1:2,"))
	if err != nil || !st.ModTime().Equal(date) || st.Size() != 3 {
		t.Errorf("stat %v, %v", st, err)
	}
	for _, sub := range []string{"new", "tmp"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
}

func TestResultHelpers(t *testing.T) {
	if got := Problems([]string{"m"}, []string{"e"}); got != "\n  MISMATCH: m\n  ERROR: e" {
		t.Errorf("Problems = %q", got)
	}
	errs := []string{"1", "2", "3"}
	if got := CapErrors(errs, 2); strings.Join(got, "|") != "1|2|... and 1 more" || errs[2] != "3" {
		t.Errorf("CapErrors = %q (input now %q)", got, errs)
	}
	if got := CapErrors(errs, 3); len(got) != 3 {
		t.Errorf("CapErrors kept %q", got)
	}
	if Round2(1.005001) != 1.01 || Round2(2.344) != 2.34 {
		t.Errorf("Round2: %v %v", Round2(1.005001), Round2(2.344))
	}
}
