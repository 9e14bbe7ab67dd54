// Package certs manages Pillarbox's TLS material: it creates a self-signed
// certificate when none exists and serves the current certificate to TLS
// handshakes, swapping it on Reload (SIGHUP) without dropping connections.
//
// On-disk format: the certificate chain is PEM ("CERTIFICATE" blocks,
// leaf first), mode 0644; the private key is PEM (PKCS #8 "PRIVATE KEY",
// or whatever tls.X509KeyPair accepts for operator-provided keys), mode
// 0600. Files are written to a temporary name, synced and renamed, so a
// crash never leaves half a key.
//
// Invariants: a Reloader always holds a pair that loaded and matched;
// a failed Reload keeps serving the previous one. Configs from TLSConfig
// never negotiate below TLS 1.2 (RFC 8996, RFC 8314 4.1).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Validity of a generated self-signed certificate.
const SelfSignedValidity = 2 * 365 * 24 * time.Hour

// EnsureSelfSigned creates a self-signed certificate for hostname at
// certPath/keyPath when neither file exists. When both exist it does
// nothing (it does not check them; NewReloader does). When only one
// exists it fails rather than overwrite an operator's file.
func EnsureSelfSigned(certPath, keyPath, hostname string) error {
	certOK, err := exists(certPath)
	if err != nil {
		return err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return err
	}
	switch {
	case certOK && keyOK:
		return nil
	case certOK:
		return fmt.Errorf("certs: %s exists but its key %s does not", certPath, keyPath)
	case keyOK:
		return fmt.Errorf("certs: %s exists but its certificate %s does not", keyPath, certPath)
	}
	certPEM, keyPEM, err := GenerateSelfSigned(hostname, time.Now(), rand.Reader)
	if err != nil {
		return err
	}
	// Key first: a crash between the two leaves "key only", which the
	// next run reports instead of pairing a certificate with a lost key.
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, certPEM, 0o644)
}

func exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// GenerateSelfSigned returns a PEM certificate and PKCS #8 key: ECDSA
// P-256, valid from now-1h for SelfSignedValidity, for server
// authentication, with subject alternative names hostname, "localhost",
// 127.0.0.1 and ::1 (an IP address hostname goes into the IP SANs).
func GenerateSelfSigned(hostname string, now time.Time, random io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Pillarbox self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		if !ip.IsLoopback() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	} else if hostname != "" && hostname != "localhost" {
		tmpl.DNSNames = append([]string{hostname}, tmpl.DNSNames...)
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// writeFile writes data atomically with the given mode, creating parent
// directories (0700: they hold the key).
func writeFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Reloader serves a certificate pair that can be swapped at run time.
type Reloader struct {
	certPath, keyPath string

	mu   sync.RWMutex
	cert *tls.Certificate
}

// NewReloader loads the pair and fails when it does not load or match.
func NewReloader(certPath, keyPath string) (*Reloader, error) {
	r := &Reloader{certPath: certPath, keyPath: keyPath}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the pair again. On error the previous pair stays in use.
func (r *Reloader) Reload() error {
	c, err := tls.LoadX509KeyPair(r.certPath, r.keyPath)
	if err != nil {
		return fmt.Errorf("certs: loading %s and %s: %w", r.certPath, r.keyPath, err)
	}
	r.mu.Lock()
	r.cert = &c
	r.mu.Unlock()
	return nil
}

// Certificate returns the pair in use (Leaf is set).
func (r *Reloader) Certificate() *tls.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert
}

// GetCertificate is a tls.Config.GetCertificate returning the current pair.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// TLSConfig returns a new server config serving the current pair (also
// after later Reloads), TLS 1.2 or later.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
}
