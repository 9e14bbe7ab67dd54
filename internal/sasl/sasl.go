// Package sasl implements the server side of the SASL mechanisms Pillarbox
// offers (RFC 4422): PLAIN (RFC 4616), LOGIN (the de-facto
// "Username:"/"Password:" exchange, draft-murchison-sasl-login) and
// SCRAM-SHA-256 (RFC 5802, RFC 7677, built on github.com/xdg-go/scram).
//
// Every mechanism is a small state machine with the shape of go-sasl's
// sasl.Server:
//
//	Next(response []byte) (challenge []byte, done bool, err error)
//
// Next receives and returns raw bytes: the protocol layer (SMTP AUTH, IMAP
// AUTHENTICATE, POP3 AUTH) does the base64 coding, the "*" cancellation and
// the "=" empty initial response. A nil response on the first call means
// "no initial response"; a non-nil, empty slice is an empty response.
//
// The package knows nothing about storage: PLAIN and LOGIN hand the
// credentials to a Verify callback, SCRAM asks a Lookup callback for the
// stored keys. Identity returns the authenticated user name once Next has
// returned done with a nil error.
//
// Invariants:
//   - Each response is bounded by MaxResponse bytes; longer input fails
//     with ErrTooLong before it is parsed.
//   - Errors defined here have messages that are safe to show to a client;
//     callback errors are passed through unchanged, so callbacks must
//     return client-safe errors too.
//   - A mechanism value is used for one exchange; after it is done (or has
//     failed) every further Next returns ErrDone.
//   - No secret (password, proof) is kept after Next returns.
package sasl

import (
	"errors"
	"strings"
)

// Mechanism names as advertised in SMTP EHLO AUTH / IMAP CAPABILITY.
const (
	Plain       = "PLAIN"
	Login       = "LOGIN"
	ScramSHA256 = "SCRAM-SHA-256"
)

// MaxResponse is the largest client response a mechanism accepts, in bytes
// after base64 decoding. RFC 4616 2 asks servers to accept at least 255
// octets per field; 4096 leaves room for long UTF-8 names and passwords.
const MaxResponse = 4096

// Errors returned by the mechanisms. Their messages are client-safe.
var (
	ErrMalformed = errors.New("malformed SASL response")
	ErrTooLong   = errors.New("SASL response too long")
	ErrAuthzID   = errors.New("authorization identity must be empty or equal the authentication identity")
	ErrDone      = errors.New("SASL exchange already finished")
)

// Server is what every mechanism implements.
type Server interface {
	// Next takes the client's response (nil before the first one when
	// there is no initial response) and returns the next challenge. When
	// done is true and err is nil, authentication succeeded and challenge
	// is empty.
	Next(response []byte) (challenge []byte, done bool, err error)
	// Identity is the authentication identity (user name as the client
	// sent it), valid after Next returned done with a nil error.
	Identity() string
}

// Verify checks a user name and clear-text password (PLAIN, LOGIN). It
// returns nil when they are valid and otherwise a client-safe error.
type Verify func(username, password string) error

// sameIdentity reports whether an authorization identity names the
// authentication identity. Pillarbox user names are email addresses whose
// domain and local part compare case-insensitively, so a case-folded
// comparison is used; the authenticator normalises the name afterwards.
func sameIdentity(authzid, authcid string) bool {
	return authzid == "" || strings.EqualFold(authzid, authcid)
}
