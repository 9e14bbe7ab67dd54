package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"unicode/utf8"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"
)

// ErrInvalidProof is returned by SCRAM when the client proof does not match
// the stored keys: the password was wrong (or the user unknown, when the
// lookup returned decoy credentials).
var ErrInvalidProof = errors.New("authentication failed")

// SCRAMCredentials are the server-side keys of RFC 5802 3 for one user.
type SCRAMCredentials struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Lookup returns the SCRAM keys of a user. To avoid telling an attacker
// which users exist (RFC 5802 9), it should return decoy credentials for an
// unknown user rather than an error; an error aborts the exchange and is
// returned by Next unchanged.
type Lookup func(username string) (SCRAMCredentials, error)

// ScramServer is the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677)
// without channel binding.
//
// Exchange (all raw bytes):
//
//	C: client-first-message   (n,,n=user,r=nonce)
//	S: server-first-message   (r=nonce+snonce,s=salt,i=iterations)
//	C: client-final-message   (c=biws,r=...,p=proof)
//	S: server-final-message   (v=signature), done=false
//	C: empty response
//	S: done=true
//
// The server-final message travels as a challenge because SMTP AUTH (RFC
// 4954 4) and POP3 AUTH have no "additional data with success".
type ScramServer struct {
	conv      *scram.ServerConversation
	lookupErr error
	step      int // 0 start, 1 want client-first, 2 want client-final, 3 want empty, 4 done
	identity  string
}

// NewScramSHA256 returns a SCRAM-SHA-256 exchange using lookup.
func NewScramSHA256(lookup Lookup) *ScramServer {
	s := &ScramServer{}
	srv, err := scram.SHA256.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, err := lookup(user)
		if err != nil {
			s.lookupErr = err
			return scram.StoredCredentials{}, err
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey,
			ServerKey:  c.ServerKey,
		}, nil
	})
	if err != nil {
		// NewServer never fails for a non-nil callback; keep the
		// exchange failing closed if that ever changes.
		s.step = 4
		return s
	}
	s.conv = srv.NewConversation()
	return s
}

// Identity returns the authenticated user name (RFC 5802 5.1 "n=",
// decoded).
func (s *ScramServer) Identity() string { return s.identity }

// Next implements Server.
func (s *ScramServer) Next(response []byte) ([]byte, bool, error) {
	if len(response) > MaxResponse {
		s.step = 4
		return nil, true, ErrTooLong
	}
	switch s.step {
	case 0:
		s.step = 1
		if response == nil {
			return []byte{}, false, nil
		}
		return s.Next(response)
	case 1:
		return s.first(response)
	case 2:
		return s.final(response)
	case 3:
		s.step = 4
		if len(response) != 0 {
			return nil, true, ErrMalformed
		}
		s.identity = s.conv.Username()
		return nil, true, nil
	}
	return nil, true, ErrDone
}

func (s *ScramServer) first(response []byte) ([]byte, bool, error) {
	s.step = 2
	if !utf8.Valid(response) {
		s.step = 4
		return nil, true, ErrMalformed
	}
	s1, err := s.conv.Step(string(response))
	if err != nil {
		s.step = 4
		if s.lookupErr != nil {
			return nil, true, s.lookupErr
		}
		return nil, true, ErrMalformed
	}
	if !sameIdentity(s.conv.AuthzID(), s.conv.Username()) {
		s.step = 4
		return nil, true, ErrAuthzID
	}
	return []byte(s1), false, nil
}

func (s *ScramServer) final(response []byte) ([]byte, bool, error) {
	s.step = 3
	if !utf8.Valid(response) {
		s.step = 4
		return nil, true, ErrMalformed
	}
	s2, err := s.conv.Step(string(response))
	if err != nil || !s.conv.Valid() {
		s.step = 4
		if s2 == scram.ErrInvalidProof {
			return nil, true, ErrInvalidProof
		}
		return nil, true, ErrMalformed
	}
	return []byte(s2), false, nil
}

// MinIterations is the smallest PBKDF2 iteration count NewSCRAMCredentials
// accepts (RFC 7677 4: at least 4096).
const MinIterations = 4096

// NewSCRAMCredentials derives the SCRAM-SHA-256 keys for password (RFC
// 5802 3):
//
//	SaltedPassword = PBKDF2-HMAC-SHA-256(Normalize(password), salt, i)
//	StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// Normalize is SASLprep (RFC 4013); a password SASLprep rejects is used
// as is, which is what clients that skip SASLprep send.
func NewSCRAMCredentials(password string, salt []byte, iterations int) (SCRAMCredentials, error) {
	if iterations < MinIterations {
		return SCRAMCredentials{}, errors.New("sasl: SCRAM iteration count below 4096")
	}
	if len(salt) == 0 {
		return SCRAMCredentials{}, errors.New("sasl: empty SCRAM salt")
	}
	if p, err := stringprep.SASLprep.Prepare(password); err == nil {
		password = p
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return SCRAMCredentials{}, err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	return SCRAMCredentials{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey[:],
		ServerKey:  hmacSHA256(salted, "Server Key"),
	}, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
