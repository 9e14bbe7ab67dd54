// Package config holds Pillarbox's configuration schema (pillarbox.toml):
// documented Go structs, their defaults, loading and validation.
//
// File format: TOML, decoded strictly (an unknown key is an error naming
// the key). A key left out takes its default from Default(). Relative paths
// (tls.cert, tls.key) are relative to data_dir, which defaults to the
// directory of the config file; a relative data_dir is relative to that
// directory too. Sizes are integers (bytes) or strings with a unit
// ("50MiB"); durations are strings ("5m").
//
// Invariants: a Config returned by Load has passed Validate, and its
// DataDir is an absolute path. Example() is a complete, commented config
// that Load turns back into exactly Default() (apart from Path/DataDir).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration.
type Config struct {
	Path       string           `toml:"-"`        // file it was loaded from
	Hostname   string           `toml:"hostname"` // greeting/EHLO name and certificate name
	DataDir    string           `toml:"data_dir"` // default: dir of Path
	Listen     Listen           `toml:"listen"`
	TLS        TLS              `toml:"tls"`
	Limits     Limits           `toml:"limits"`
	Log        Log              `toml:"log"`
	Submission SubmissionConfig `toml:"submission"`
	IMAP       IMAP             `toml:"imap"`
	POP3       POP3             `toml:"pop3"`
	Delivery   Delivery         `toml:"delivery"`
}

// POP3 holds the POP3 server's own settings; [limits] applies to POP3
// too (line_length, connections_per_ip, sessions, errors_per_session,
// auth_*).
type POP3 struct {
	// Maildrop lists the mailboxes a POP3 session serves, in order, for
	// accounts without a maildrop of their own (account set --pop3-maildrop).
	Maildrop []string `toml:"maildrop"`
	// Delete is what DELE + QUIT does: "expunge" removes the messages
	// (IMAP sees the expunge), "hide" adds the keyword $POP3Deleted and
	// hides them from POP3 only.
	Delete string `toml:"delete"`
	// PlaintextLoopback allows USER/PASS and AUTH before STLS on
	// listen.pop3 for clients connecting from a loopback address.
	PlaintextLoopback bool `toml:"plaintext_loopback"`
	// IdleTimeout is the inactivity timer (RFC 1939 3: at least 10 minutes).
	IdleTimeout Duration `toml:"idle_timeout"`
	// CommandsPerSession bounds the commands of one session.
	CommandsPerSession int `toml:"commands_per_session"`
	// LoginDelay is the least time between two logins of one account
	// (RFC 2449 LOGIN-DELAY); 0 turns it off.
	LoginDelay Duration `toml:"login_delay"`
}

// POP3 deletion modes.
const (
	POP3DeleteExpunge = "expunge"
	POP3DeleteHide    = "hide"
)

// IMAP holds the IMAP server's own settings; [limits] applies to IMAP
// too (message_size is APPENDLIMIT, connections_per_ip, sessions,
// errors_per_session, auth_*, command_timeout for a half-sent command).
type IMAP struct {
	LineLength            int      `toml:"line_length"`             // longest command line, literals excluded
	ConnectionsPerAccount int      `toml:"connections_per_account"` // concurrent sessions of one account
	Autologout            Duration `toml:"autologout"`              // idle time before logout (IDLE re-arms it)
}

// Listen lists the addresses ("host:port") each endpoint binds. An empty
// list disables the endpoint.
type Listen struct {
	SMTP        []string `toml:"smtp"`        // MX: receive for local domains
	Submission  []string `toml:"submission"`  // STARTTLS, AUTH required
	Submissions []string `toml:"submissions"` // implicit TLS, AUTH required
	IMAP        []string `toml:"imap"`        // STARTTLS
	IMAPS       []string `toml:"imaps"`       // implicit TLS
	POP3        []string `toml:"pop3"`        // STLS
	POP3S       []string `toml:"pop3s"`       // implicit TLS
}

// TLS names the certificate and key (PEM), relative to DataDir. A
// self-signed pair is generated when both are absent.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Limits are the named limits of all endpoints.
type Limits struct {
	MessageSize          Size     `toml:"message_size"`           // largest message accepted (SMTP SIZE)
	RecipientsPerMessage int      `toml:"recipients_per_message"` // RCPT TO per transaction
	LineLength           int      `toml:"line_length"`            // longest line incl. CRLF
	ConnectionsPerIP     int      `toml:"connections_per_ip"`     // concurrent, per remote address
	Sessions             int      `toml:"sessions"`               // concurrent, all endpoints
	ErrorsPerSession     int      `toml:"errors_per_session"`     // then the session is closed
	AuthFailures         int      `toml:"auth_failures"`          // failures before lockout
	AuthLockout          Duration `toml:"auth_lockout"`           // lockout time and counting window
	CommandTimeout       Duration `toml:"command_timeout"`        // idle time waiting for a command
	DataTimeout          Duration `toml:"data_timeout"`           // time waiting for DATA bytes
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// SubmissionConfig configures mail submission.
type SubmissionConfig struct {
	// SaveSent is the default "save a copy to Sent" for new accounts.
	SaveSent bool `toml:"save_sent"`
}

// Load reads, completes and validates the config file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parse(string(b), path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// parse decodes TOML text over Default() and resolves DataDir against
// the directory of path.
func parse(text, path string) (*Config, error) {
	c := Default()
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	c.Path = path
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	switch {
	case c.DataDir == "":
		c.DataDir = dir
	case !filepath.IsAbs(c.DataDir):
		c.DataDir = filepath.Join(dir, c.DataDir)
	}
	c.DataDir = filepath.Clean(c.DataDir)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Abs resolves p relative to DataDir; an absolute p is returned as is.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Default returns the built-in configuration. DataDir and Path are empty.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || checkHostname(host) != nil {
		host = "localhost"
	}
	return &Config{
		Hostname: strings.ToLower(host),
		Listen: Listen{
			SMTP:        []string{":25"},
			Submission:  []string{":587"},
			Submissions: []string{":465"},
			IMAP:        []string{":143"},
			IMAPS:       []string{":993"},
			POP3:        []string{":110"},
			POP3S:       []string{":995"},
		},
		TLS: TLS{Cert: "tls/cert.pem", Key: "tls/key.pem"},
		Limits: Limits{
			MessageSize:          50 << 20,
			RecipientsPerMessage: 100,
			LineLength:           4096,
			ConnectionsPerIP:     20,
			Sessions:             2000,
			ErrorsPerSession:     20,
			AuthFailures:         5,
			AuthLockout:          Duration(15 * time.Minute),
			CommandTimeout:       Duration(5 * time.Minute),
			DataTimeout:          Duration(10 * time.Minute),
		},
		Log:  Log{Level: "info", Format: "text"},
		IMAP: IMAP{LineLength: 64 << 10, ConnectionsPerAccount: 50, Autologout: Duration(30 * time.Minute)},
		POP3: POP3{Maildrop: []string{"INBOX"}, Delete: POP3DeleteExpunge, IdleTimeout: Duration(10 * time.Minute),
			CommandsPerSession: 1000000},
		Delivery: defaultDelivery(),
	}
}

// ErrInvalid wraps every validation problem; test with errors.Is.
var ErrInvalid = errors.New("invalid configuration")
