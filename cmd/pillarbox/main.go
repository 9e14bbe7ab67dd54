// Command pillarbox is the Pillarbox mail server: one binary holding the
// server (serve, quickstart) and every administration command (domain,
// account, alias, queue, import, export, config).
//
// This is the only package with command-line flags. Administration
// commands open the store directly (sqlstore on the config's data_dir);
// SQLite lets them run while the server runs, and the server sees their
// changes at once.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"pillarbox/internal/config"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// DefaultConfigPath is where the config is looked for without --config
// and PILLARBOX_CONFIG.
const DefaultConfigPath = "pillarbox-data/pillarbox.toml"

// EnvConfig names the environment variable that gives the config path.
const EnvConfig = "PILLARBOX_CONFIG"

func main() {
	c := &cli{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, rand: rand.Reader,
		stderrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		signals:          true,
	}
	if err := c.execute(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pillarbox:", err)
		os.Exit(1)
	}
}

// cli holds one invocation's streams, environment and global flags. There
// is no package-level state: tests build their own cli and run commands
// in-process.
type cli struct {
	stdin            io.Reader
	stdout, stderr   io.Writer
	getenv           func(string) string
	rand             io.Reader
	stderrIsTerminal bool
	signals          bool // serve/quickstart react to SIGINT/SIGTERM/SIGHUP

	// Global flags.
	configPath string
	logLevel   string
	logFormat  string
}

// execute runs the command line args.
func (c *cli) execute(ctx context.Context, args []string) error {
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	return root.ExecuteContext(ctx)
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pillarbox",
		Short: "Pillarbox: a complete mail server in one binary",
		Long: `Pillarbox is a complete mail server in one binary: SMTP receiving (MX and
submission) into a durable embedded store, read over IMAP (IMAP4rev2 and
IMAP4rev1, IDLE, CONDSTORE/QRESYNC), with POP3 and outbound delivery to
follow.

Start here:
  pillarbox quickstart you@example.com     set up ./pillarbox-data and serve
  pillarbox serve                          serve from an existing config

Administration commands (domain, account, alias, queue, import, export) open
the data directory named by the config and work while the server runs.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&c.configPath, "config", "", "config file (env "+EnvConfig+"; default "+DefaultConfigPath+")")
	pf.StringVar(&c.logLevel, "log-level", "", "log level: debug, info, warn, error (default: the config's log.level)")
	pf.StringVar(&c.logFormat, "log-format", "", "log format: text or json (default: the config's log.format)")
	root.AddCommand(
		c.quickstartCmd(), c.serveCmd(), c.configCmd(),
		c.domainCmd(), c.accountCmd(), c.aliasCmd(), c.queueCmd(),
		c.exportCmd(), c.importCmd(), c.versionCmd(),
	)
	return root
}

// resolvedConfigPath is --config, else $PILLARBOX_CONFIG, else the default.
func (c *cli) resolvedConfigPath() (path string, explicit bool) {
	if c.configPath != "" {
		return c.configPath, true
	}
	if p := c.getenv(EnvConfig); p != "" {
		return p, true
	}
	return DefaultConfigPath, false
}

// loadConfig loads and validates the config.
func (c *cli) loadConfig() (*config.Config, error) {
	path, _ := c.resolvedConfigPath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no config at %s: run `pillarbox quickstart`, or pass --config / set %s", path, EnvConfig)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// logger builds the logger from the config's [log] section and the
// --log-level/--log-format overrides. The level can change later (SIGHUP).
func (c *cli) logger(cfg *config.Config) (*slog.Logger, *slog.LevelVar, error) {
	return c.loggerTo(c.stderr, cfg)
}

// loggerTo is logger writing to w.
func (c *cli) loggerTo(w io.Writer, cfg *config.Config) (*slog.Logger, *slog.LevelVar, error) {
	levelName, format := "info", "text"
	if cfg != nil {
		if cfg.Log.Level != "" {
			levelName = cfg.Log.Level
		}
		if cfg.Log.Format != "" {
			format = cfg.Log.Format
		}
	}
	if c.logLevel != "" {
		levelName = c.logLevel
	}
	if c.logFormat != "" {
		format = c.logFormat
	}
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(levelName)); err != nil {
		return nil, nil, fmt.Errorf("bad log level %q (debug, info, warn, error)", levelName)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), lv, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), lv, nil
	}
	return nil, nil, fmt.Errorf("bad log format %q (text, json)", format)
}

// openStore loads the config and opens its store for an admin command.
func (c *cli) openStore() (*sqlstore.Store, *config.Config, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	log, _, err := c.logger(cfg)
	if err != nil {
		return nil, nil, err
	}
	// The server indexes for search what admin commands store.
	st, err := sqlstore.Open(cfg.DataDir, sqlstore.Options{Logger: log, NoIndexer: true})
	if err != nil {
		return nil, nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	return st, cfg, nil
}

// withStore runs fn with the store open, closing it afterwards.
func (c *cli) withStore(fn func(st store.Store, cfg *config.Config) error) error {
	st, cfg, err := c.openStore()
	if err != nil {
		return err
	}
	err = fn(st, cfg)
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// out prints to the command's standard output.
func (c *cli) out(format string, args ...any) {
	fmt.Fprintf(c.stdout, format, args...)
}
