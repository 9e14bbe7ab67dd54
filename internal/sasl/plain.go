package sasl

import (
	"bytes"
	"unicode/utf8"
)

// PlainServer is the server side of PLAIN (RFC 4616).
type PlainServer struct {
	verify   Verify
	started  bool
	done     bool
	identity string
}

// NewPlain returns a PLAIN exchange that checks credentials with verify.
func NewPlain(verify Verify) *PlainServer { return &PlainServer{verify: verify} }

// Identity returns the authenticated authcid.
func (s *PlainServer) Identity() string { return s.identity }

// Next implements Server. Without an initial response the first call
// returns an empty challenge (RFC 4616 2: the client sends the message
// after an empty challenge); the next response must be the message.
func (s *PlainServer) Next(response []byte) ([]byte, bool, error) {
	if s.done {
		return nil, true, ErrDone
	}
	if !s.started {
		s.started = true
		if response == nil {
			return []byte{}, false, nil
		}
	}
	s.done = true
	authzid, authcid, passwd, err := ParsePlain(response)
	if err != nil {
		return nil, true, err
	}
	if !sameIdentity(authzid, authcid) {
		return nil, true, ErrAuthzID
	}
	if err := s.verify(authcid, passwd); err != nil {
		return nil, true, err
	}
	s.identity = authcid
	return nil, true, nil
}

// ParsePlain splits a PLAIN message (RFC 4616 2):
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd
//
// authcid and passwd must be non-empty; all three must be valid UTF-8
// without NUL. Input longer than MaxResponse fails with ErrTooLong.
func ParsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	if len(msg) > MaxResponse {
		return "", "", "", ErrTooLong
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", ErrMalformed
	}
	for _, p := range parts {
		if !utf8.Valid(p) {
			return "", "", "", ErrMalformed
		}
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}
