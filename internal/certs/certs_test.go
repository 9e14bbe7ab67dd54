package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serve runs a TLS server on 127.0.0.1:0 with cfg that completes
// handshakes and closes; it returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*tls.Conn).Handshake()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

// dial handshakes with roots trusted and returns the served leaf.
func dial(t *testing.T, addr, serverName string, roots *x509.CertPool, maxVersion uint16) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName, MaxVersion: maxVersion, MinVersion: tls.VersionTLS10})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func pool(t *testing.T, certPath string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in PEM")
	}
	return p
}

func TestEnsureSelfSignedAndHandshake(t *testing.T) {
	dir := t.TempDir()
	certPath := filepath.Join(dir, "tls", "a", "cert.pem")
	keyPath := filepath.Join(dir, "tls", "a", "key.pem")
	if err := EnsureSelfSigned(certPath, keyPath, "mail.example.test"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v, %v", fi, err)
	}
	r, err := NewReloader(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	leaf := r.Certificate().Leaf
	if leaf == nil {
		t.Fatal("Leaf not set")
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 700*24*time.Hour || d > 740*24*time.Hour {
		t.Errorf("validity %v, want about 2 years", d)
	}
	addr := serve(t, r.TLSConfig())
	roots := pool(t, certPath)
	for _, name := range []string{"mail.example.test", "localhost", "127.0.0.1", "::1"} {
		got, err := dial(t, addr, name, roots, 0)
		if err != nil {
			t.Fatalf("handshake as %s: %v", name, err)
		}
		if got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Errorf("served serial %v, want %v", got.SerialNumber, leaf.SerialNumber)
		}
	}
	if _, err := dial(t, addr, "other.example.test", roots, 0); err == nil {
		t.Error("certificate valid for a name it should not have")
	}
	if _, err := dial(t, addr, "mail.example.test", roots, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}

	// Present pair: left alone.
	before, _ := os.ReadFile(certPath)
	if err := EnsureSelfSigned(certPath, keyPath, "other.example.test"); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(certPath); !bytes.Equal(before, after) {
		t.Error("existing certificate replaced")
	}
}

func TestEnsureSelfSignedHalfPair(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, []byte("operator's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSelfSigned(certPath, keyPath, "mail.example.test"); err == nil {
		t.Fatal("generated a key next to an existing certificate")
	}
	if b, _ := os.ReadFile(certPath); string(b) != "operator's" {
		t.Error("operator's certificate overwritten")
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Error("key written")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := EnsureSelfSigned(certPath, keyPath, "mail.example.test"); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r.TLSConfig())
	first, err := dial(t, addr, "localhost", pool(t, certPath), 0)
	if err != nil {
		t.Fatal(err)
	}

	// Replace the pair on disk, as an operator or ACME client would.
	os.Remove(certPath)
	os.Remove(keyPath)
	if err := EnsureSelfSigned(certPath, keyPath, "mail.example.test"); err != nil {
		t.Fatal(err)
	}
	if got, _ := dial(t, addr, "localhost", pool(t, certPath), 0); got != nil {
		t.Fatal("new certificate served before Reload")
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	second, err := dial(t, addr, "localhost", pool(t, certPath), 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.SerialNumber.Cmp(second.SerialNumber) == 0 {
		t.Fatal("serial unchanged after Reload")
	}

	// A broken file: Reload fails and the old pair keeps serving.
	if err := os.WriteFile(keyPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload accepted a broken key")
	}
	third, err := dial(t, addr, "localhost", pool(t, certPath), 0)
	if err != nil || third.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after failed Reload: %v, %v", third, err)
	}
}

func TestNewReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewReloader(filepath.Join(dir, "none.pem"), filepath.Join(dir, "none.key")); err == nil {
		t.Error("missing files accepted")
	}
	// Mismatched pair.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	EnsureSelfSigned(filepath.Join(a, "c"), filepath.Join(a, "k"), "x.test")
	EnsureSelfSigned(filepath.Join(b, "c"), filepath.Join(b, "k"), "x.test")
	if _, err := NewReloader(filepath.Join(a, "c"), filepath.Join(b, "k")); err == nil {
		t.Error("mismatched pair accepted")
	}
}

func TestGenerateSelfSignedIPHost(t *testing.T) {
	certPEM, _, err := GenerateSelfSigned("192.0.2.7", time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("192.0.2.7"); err != nil {
		t.Error(err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	if leaf.SerialNumber.Cmp(big.NewInt(0)) <= 0 {
		t.Error("serial not positive")
	}
}
