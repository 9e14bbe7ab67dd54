package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/spf13/cobra"

	"pillarbox/internal/app"
	"pillarbox/internal/config"
)

func (c *cli) serveCmd() *cobra.Command {
	var cpuProfile, traceFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mail server from the config",
		Long: `Run the mail server from the config (--config, $PILLARBOX_CONFIG or
pillarbox-data/pillarbox.toml): every listener of [listen] (smtp,
submission, submissions, imap, imaps, pop3, pop3s) is bound, or none.

Signals: SIGTERM and SIGINT shut down gracefully (no new sessions; sessions in
flight get up to 30 seconds to finish, then 421 (SMTP), BYE (IMAP; IDLE
sessions at once) or -ERR [SYS/TEMP] (POP3, at once between commands,
deleting nothing); nothing accepted is lost).
SIGHUP re-reads the config and the TLS certificate files: log.level and every
[limits], [imap] and [pop3] key apply to sessions that start afterwards; hostname, data_dir,
[listen], tls.cert/tls.key and log.format need a restart (the log names them).
An invalid config is refused and the running one kept.

Memory: the server collects garbage at GOGC=400 under a soft limit of
768 MiB (GOMEMLIMIT); set either environment variable to override, e.g.
GOMEMLIMIT=4GiB for tens of thousands of concurrent sessions.`,
		Example: `  pillarbox serve
  pillarbox --config /etc/pillarbox/pillarbox.toml --log-format json serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if traceFile != "" {
				stop, err := startTrace(traceFile)
				if err != nil {
					return err
				}
				defer stop()
			}
			return c.serve(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown (for developers)")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	cmd.Flags().StringVar(&traceFile, "trace", "", "write a runtime execution trace to this file until shutdown (for developers)")
	_ = cmd.Flags().MarkHidden("trace")
	return cmd
}

// serverGCPercent is the garbage collector target the server runs with
// unless GOGC is set: the live heap of a mail server is small (tens of
// MiB), and collecting less often cut CPU per SMTP message by about 8% in
// bench/smtp.sh.
const serverGCPercent = 400

// serverMemoryLimit is the soft memory limit the server runs with unless
// GOMEMLIMIT is set. With GC at 400% the heap may grow to five times the
// live data: 10,000 IMAP sessions in IDLE (about 400 MiB live) reached
// 2.4 GiB; under this limit the collector runs more often instead as the
// heap nears it (755 MiB measured). Servers with more live data than this
// should set GOMEMLIMIT higher (e.g. GOMEMLIMIT=4GiB).
const serverMemoryLimit = 768 << 20

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serverMemoryLimit)
	}
}

// startCPUProfile starts runtime/pprof CPU profiling into path.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// startTrace starts a runtime/trace execution trace into path.
func startTrace(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// serve runs the App until SIGTERM/SIGINT (or ctx ends); SIGHUP reloads.
func (c *cli) serve(ctx context.Context, cfg *config.Config) error {
	tuneGC()
	lw := newLogWriter(c.stderr)
	defer lw.Close()
	log, level, err := c.loggerTo(lw, cfg)
	if err != nil {
		return err
	}
	// Signals are caught before anything slow (certificate, store) starts:
	// a SIGHUP during start-up waits for the App instead of killing us.
	var hup chan os.Signal
	if c.signals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		// Once shutdown has begun, a second SIGINT/SIGTERM kills at once.
		go func() { <-ctx.Done(); stop() }()
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	if c.logLevel == "" { // an explicit --log-level wins over the file on reload
		a.LogLevel = level
	}
	if hup != nil {
		go func() {
			for {
				select {
				case <-hup:
					log.Info("SIGHUP: reloading")
					if err := a.Reload(); err != nil {
						log.Error("reload failed", "err", err)
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	log.Info("starting", "version", versionString(), "config", cfg.Path, "data_dir", cfg.DataDir)
	if err := a.Run(ctx); err != nil {
		// Run only returns after shutting down what it started; a failed
		// Start leaves the store open.
		if serr := a.Shutdown(context.Background()); serr != nil {
			log.Error("shutdown", "err", serr)
		}
		return err
	}
	log.Info("stopped")
	return nil
}

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show an example config or check one",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "example",
		Short:   "Print a commented example config with every key documented",
		Example: `  pillarbox config example > pillarbox.toml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.out("%s", config.Example())
			return nil
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "Load and validate the config; print the effective settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			c.out("%s: OK\n", cfg.Path)
			c.out("hostname:    %s\ndata_dir:    %s\n", cfg.Hostname, cfg.DataDir)
			l := cfg.Listen
			for _, x := range []struct {
				name  string
				addrs []string
			}{{"smtp", l.SMTP}, {"submission", l.Submission}, {"submissions", l.Submissions},
				{"imap", l.IMAP}, {"imaps", l.IMAPS}, {"pop3", l.POP3}, {"pop3s", l.POP3S}} {
				c.out("%-12s %v\n", x.name+":", x.addrs)
			}
			cert, key := cfg.Abs(cfg.TLS.Cert), cfg.Abs(cfg.TLS.Key)
			c.out("tls:         cert %s, key %s%s\n", cert, key, missingNote(cert, key))
			return nil
		},
	})
	return cmd
}

func missingNote(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return " (absent: a self-signed certificate is generated at start)"
		}
	}
	return ""
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.out("pillarbox %s\n", versionString())
			return nil
		},
	}
}

// versionString is the module version and VCS revision from the build info.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev + modified
	}
	return fmt.Sprintf("%s %s", v, bi.GoVersion)
}

// discard is a logger for in-process helpers that must not print.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
