package sasl

import (
	"bytes"
	"unicode/utf8"
)

// LOGIN challenges. The mechanism has no RFC; every client known to use it
// accepts these two prompts (draft-murchison-sasl-login-00).
var (
	loginUsername = []byte("Username:")
	loginPassword = []byte("Password:")
)

// LoginServer is the server side of the LOGIN mechanism.
type LoginServer struct {
	verify   Verify
	step     int // 0: start, 1: waiting for user name, 2: waiting for password, 3: done
	username string
	identity string
}

// NewLogin returns a LOGIN exchange that checks credentials with verify.
func NewLogin(verify Verify) *LoginServer { return &LoginServer{verify: verify} }

// Identity returns the authenticated user name.
func (s *LoginServer) Identity() string { return s.identity }

// Next implements Server. An initial response, if any, is the user name
// (as sent by clients that use SASL-IR with LOGIN).
func (s *LoginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			s.step = 1
			return loginUsername, false, nil
		}
		s.step = 1
		return s.Next(response)
	case 1:
		name, err := loginField(response)
		if err != nil {
			s.step = 3
			return nil, true, err
		}
		s.username = name
		s.step = 2
		return loginPassword, false, nil
	case 2:
		s.step = 3
		pass, err := loginField(response)
		if err != nil {
			return nil, true, err
		}
		if err := s.verify(s.username, pass); err != nil {
			return nil, true, err
		}
		s.identity = s.username
		return nil, true, nil
	}
	return nil, true, ErrDone
}

// loginField checks one LOGIN response: non-empty UTF-8 without NUL, CR or
// LF, at most MaxResponse bytes.
func loginField(b []byte) (string, error) {
	if len(b) > MaxResponse {
		return "", ErrTooLong
	}
	if len(b) == 0 || !utf8.Valid(b) || bytes.ContainsAny(b, "\x00\r\n") {
		return "", ErrMalformed
	}
	return string(b), nil
}
