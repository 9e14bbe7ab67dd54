package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"pillarbox/internal/addr"
	"pillarbox/internal/certs"
	"pillarbox/internal/config"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// Loopback high ports quickstart uses with --local or when it cannot bind
// privileged ports.
var localPorts = []struct {
	name string
	port int
}{
	{"smtp", 1025}, {"submission", 1587}, {"submissions", 1465},
	{"imap", 1143}, {"imaps", 1993}, {"pop3", 1110}, {"pop3s", 1995},
}

type quickstartOpts struct {
	local      bool
	dataDir    string
	hostname   string
	portOffset int  // hidden: shifts the loopback ports (tests)
	noServe    bool // hidden: set up and print, do not serve (tests)
}

func (c *cli) quickstartCmd() *cobra.Command {
	var o quickstartOpts
	cmd := &cobra.Command{
		Use:   "quickstart [EMAIL]",
		Short: "Set up a data directory with a domain and an account, then serve",
		Long: `Set up everything Pillarbox needs in one step, then serve:

  - the data directory (--data-dir, default ./pillarbox-data) with a config
    (pillarbox.toml), a self-signed TLS certificate for the hostname, and the
    database;
  - the domain of EMAIL and an account for EMAIL with a generated password,
    printed once (EMAIL defaults to admin@<domain>, the domain being the
    hostname without a leading mail./mx./smtp. label);
  - the client settings (server name, ports and their TLS modes, user name)
    and the DNS records the domain needs.

Listeners: the standard ports (25, 587, 465, 143, 993, 110, 995) on all
addresses when every one of them can be bound; otherwise, or with --local, loopback
high ports: SMTP 1025, submission 1587, submissions 1465, IMAP 1143,
IMAPS 1993, POP3 1110, POP3S 1995.

Run twice, quickstart reuses what exists: the config is kept as it is and an
existing account keeps its password. The config goes to <data-dir>/pillarbox.toml
unless --config or $PILLARBOX_CONFIG names another path.`,
		Example: `  pillarbox quickstart --local
  pillarbox quickstart you@example.com --hostname mail.example.com
  go run ./cmd/pillarbox quickstart --local --data-dir /tmp/pb`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			email := ""
			if len(args) == 1 {
				email = args[0]
			}
			if _, explicit := c.resolvedConfigPath(); explicit && !cmd.Flags().Changed("data-dir") {
				// --config or $PILLARBOX_CONFIG names the file: data_dir
				// defaults to its directory, as for every command.
				o.dataDir = ""
			}
			return c.quickstart(cmd.Context(), o, email)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.local, "local", false, "bind loopback high ports (1025, 1587, ...) instead of the standard ports")
	f.StringVar(&o.dataDir, "data-dir", "pillarbox-data", "data directory to create or reuse")
	f.StringVar(&o.hostname, "hostname", "", "server host name (default: this machine's name if it has a dot, else localhost)")
	f.IntVar(&o.portOffset, "port-offset", 0, "add this to every loopback high port (for tests)")
	f.BoolVar(&o.noServe, "no-serve", false, "set up and print, but do not serve")
	_ = f.MarkHidden("port-offset")
	_ = f.MarkHidden("no-serve")
	return cmd
}

// quickstart sets up (or reuses) the data directory, prints the settings
// and serves.
func (c *cli) quickstart(ctx context.Context, o quickstartOpts, email string) error {
	cfgPath, explicit := c.resolvedConfigPath()
	if !explicit {
		cfgPath = filepath.Join(o.dataDir, "pillarbox.toml")
	}
	cfg, created, err := c.quickstartConfig(cfgPath, o, email)
	if err != nil {
		return err
	}
	certPath, keyPath := cfg.Abs(cfg.TLS.Cert), cfg.Abs(cfg.TLS.Key)
	if err := certs.EnsureSelfSigned(certPath, keyPath, cfg.Hostname); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if email == "" {
		email = "admin@" + mailDomain(cfg.Hostname)
	}
	email, err = canonicalEmail(email)
	if err != nil {
		return err
	}
	pw, err := c.quickstartAccount(ctx, cfg, email)
	if err != nil {
		return err
	}
	c.printWelcome(cfg, cfgPath, created, email, pw, explicit)
	if o.noServe {
		return nil
	}
	return c.serve(ctx, cfg)
}

// quickstartConfig loads the config at path, or writes a new one.
func (c *cli) quickstartConfig(path string, o quickstartOpts, email string) (*config.Config, bool, error) {
	if _, err := os.Stat(path); err == nil {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, false, err
		}
		return cfg, false, cfg.Validate()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, false, err
	}
	cfg := config.Default()
	cfg.Path = path
	cfg.Hostname = quickstartHostname(o.hostname, email)
	if o.dataDir != "" && !samePath(filepath.Dir(path), o.dataDir) {
		abs, err := filepath.Abs(o.dataDir)
		if err != nil {
			return nil, false, err
		}
		cfg.DataDir = abs
	}
	if o.local || !canBindStandardPorts() {
		setLocalPorts(cfg, o.portOffset)
	}
	if err := config.Write(path, cfg); err != nil {
		return nil, false, err
	}
	cfg, err := config.Load(path) // as serve will see it (data_dir resolved)
	if err != nil {
		return nil, false, err
	}
	return cfg, true, cfg.Validate()
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// quickstartHostname picks the server name: --hostname, else this
// machine's name when it is a FQDN, else "mail.<domain of EMAIL>", else
// localhost.
func quickstartHostname(flag, email string) string {
	if flag != "" {
		return strings.TrimSuffix(strings.ToLower(flag), ".")
	}
	if h, err := os.Hostname(); err == nil && strings.Contains(strings.Trim(h, "."), ".") {
		return strings.ToLower(strings.TrimSuffix(h, "."))
	}
	if a, err := addr.Parse(email); err == nil && email != "" {
		return "mail." + a.Canonical().Domain
	}
	return "localhost"
}

// mailDomain strips a leading mail./mx./smtp. label: the domain an
// administrator most likely wants for "admin@...".
func mailDomain(host string) string {
	for _, p := range []string{"mail.", "mx.", "smtp."} {
		if rest, ok := strings.CutPrefix(host, p); ok && strings.Contains(rest, ".") {
			return rest
		}
	}
	return host
}

// standardPorts are the ports quickstart configures unless --local.
var standardPorts = []string{":25", ":587", ":465", ":143", ":993", ":110", ":995"}

// canBindStandardPorts reports whether every standard port can be bound
// here (privileges, and no other mail server on them).
func canBindStandardPorts() bool {
	for _, p := range standardPorts {
		l, err := net.Listen("tcp", p)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// setLocalPorts points every listener at its loopback high port.
func setLocalPorts(cfg *config.Config, offset int) {
	l := &cfg.Listen
	dst := map[string]*[]string{"smtp": &l.SMTP, "submission": &l.Submission, "submissions": &l.Submissions,
		"imap": &l.IMAP, "imaps": &l.IMAPS, "pop3": &l.POP3, "pop3s": &l.POP3S}
	for _, p := range localPorts {
		*dst[p.name] = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port+offset))}
	}
}

// quickstartAccount makes sure the domain and the account exist. It
// returns the generated password, or "" when the account already existed.
func (c *cli) quickstartAccount(ctx context.Context, cfg *config.Config, email string) (string, error) {
	st, err := sqlstore.Open(cfg.DataDir, sqlstore.Options{Logger: discard(), NoIndexer: true})
	if err != nil {
		return "", fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	defer st.Close()
	if err := st.AddDomain(ctx, domainOf(email)); err != nil && !errors.Is(err, store.ErrExists) {
		return "", err
	}
	if _, err := st.Account(ctx, email); err == nil {
		return "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	pw, err := c.generatePassword()
	if err != nil {
		return "", err
	}
	if _, err := c.createAccount(ctx, st, cfg, email, pw, 0); err != nil {
		return "", err
	}
	// RFC 5321 4.5.1: postmaster@ must reach someone (and the DMARC record
	// quickstart prints sends reports there).
	pm := "postmaster@" + domainOf(email)
	if pm != email {
		if err := st.AddAlias(ctx, pm, []string{email}); err != nil && !errors.Is(err, store.ErrExists) {
			return "", err
		}
	}
	return pw, nil
}
