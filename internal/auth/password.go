package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"pillarbox/internal/sasl"
	"pillarbox/internal/store"
)

// argon2id parameters for new hashes. t=2, m=32 MiB, p=1 takes about 50 ms
// on the reference machine (2 cores), above OWASP's minimum (t=2, m=19
// MiB). Hashes keep their own parameters in the PHC string, so changing
// these later does not invalidate stored passwords.
const (
	argonTime    = 2
	argonMemory  = 32 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// SCRAMIterations is the PBKDF2 iteration count for new SCRAM-SHA-256
// credentials (RFC 7677 4 asks for at least 4096).
const SCRAMIterations = 4096

// Bounds accepted when parsing a stored PHC string, so that a corrupt or
// hostile database row cannot make a login allocate gigabytes.
const (
	maxArgonMemory  = 1024 * 1024 // KiB: 1 GiB
	maxArgonTime    = 16
	maxArgonThreads = 16
)

// HashPassword returns the stored form of a password: an argon2id PHC
// string and SCRAM-SHA-256 keys, each with its own random salt. The clear
// password is not kept.
func HashPassword(pw string) (store.Credentials, error) {
	if pw == "" {
		return store.Credentials{}, errors.New("auth: empty password")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return store.Credentials{}, err
	}
	phc := encodePHC(argonParams{time: argonTime, memory: argonMemory, threads: argonThreads}, salt,
		argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen))

	ssalt := make([]byte, saltLen)
	if _, err := rand.Read(ssalt); err != nil {
		return store.Credentials{}, err
	}
	sc, err := sasl.NewSCRAMCredentials(pw, ssalt, SCRAMIterations)
	if err != nil {
		return store.Credentials{}, err
	}
	return store.Credentials{
		PasswordHash: phc,
		SCRAMSHA256: &store.SCRAMCredentials{
			Salt: sc.Salt, Iterations: sc.Iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey,
		},
	}, nil
}

type argonParams struct {
	time, memory uint32
	threads      uint8
}

var b64 = base64.RawStdEncoding

// encodePHC formats an argon2id hash in the PHC string format:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt b64>$<hash b64>
//
// (base64 without padding, as the reference implementation writes it).
func encodePHC(p argonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadPHC = errors.New("auth: malformed argon2id PHC string")

// decodePHC parses what encodePHC writes, with bounded parameters.
func decodePHC(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadPHC
	}
	var threads uint32
	if n, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil || n != 3 {
		return p, nil, nil, errBadPHC
	}
	if p.time < 1 || p.time > maxArgonTime || threads < 1 || threads > maxArgonThreads ||
		p.memory < 8*threads || p.memory > maxArgonMemory || f[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, threads) {
		return p, nil, nil, errBadPHC
	}
	p.threads = uint8(threads)
	salt, err := b64.DecodeString(f[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errBadPHC
	}
	key, err := b64.DecodeString(f[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadPHC
	}
	return p, salt, key, nil
}

// checkPHC reports whether pw matches the PHC string, comparing in
// constant time.
func checkPHC(phc, pw string) (bool, error) {
	p, salt, key, err := decodePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
