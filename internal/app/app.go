// Package app is Pillarbox's composition root: it turns a config.Config into
// a running server (store, TLS material, authenticator, local delivery and
// one server per listener kind: smtpserver for smtp/submission/submissions,
// imapserver for imap/imaps, pop3server for pop3/pop3s) and owns their
// lifecycle.
//
// Lifecycle: New opens the store and loads TLS material (a self-signed
// certificate is generated when the configured files are absent); Start
// binds every configured listener (all or none) and serves; Run is Start
// plus waiting for the context; Shutdown stops accepting, lets sessions in
// flight finish until its context expires (then they get 421), and closes
// the store. Reload re-reads the config file and applies the log level and
// every [limits], [imap] and [pop3] key to new sessions (see Reload), and reloads
// the TLS certificates.
//
// limits.sessions is one limit.Counter shared by every endpoint, so it
// bounds concurrent sessions over all listeners together.
//
// Nothing here keeps state of its own on disk: the data directory belongs
// to the store (metadata, blobs) and to certs (TLS files).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/certs"
	"pillarbox/internal/config"
	"pillarbox/internal/delivery"
	"pillarbox/internal/imapserver"
	"pillarbox/internal/limit"
	"pillarbox/internal/pop3server"
	"pillarbox/internal/smtpserver"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// DefaultShutdownTimeout bounds the graceful shutdown Run performs when its
// context ends.
const DefaultShutdownTimeout = 30 * time.Second

// Listener names, as in the [listen] section of the config.
const (
	ListenSMTP        = "smtp"
	ListenSubmission  = "submission"
	ListenSubmissions = "submissions"
	ListenIMAP        = "imap"
	ListenIMAPS       = "imaps"
	ListenPOP3        = "pop3"
	ListenPOP3S       = "pop3s"
)

// App is a configured Pillarbox instance.
type App struct {
	// LogLevel, when set, is updated by Reload from the config's log.level
	// (the caller builds its logger's handler on it).
	LogLevel *slog.LevelVar

	log      *slog.Logger
	st       *sqlstore.Store
	auth     *auth.Authenticator
	certs    *certs.Reloader
	backend  *delivery.Local
	sessions *limit.Counter // limits.sessions over every endpoint

	reloadMu sync.Mutex // one Reload at a time
	mu       sync.Mutex
	cfg      *config.Config
	servers  []*endpoint
	started  bool
	closed   bool
	serveErr chan error
	done     chan struct{} // closed by Shutdown
}

// server is what every endpoint package's Server is.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// endpoint is one server with the listeners it serves.
type endpoint struct {
	name      string
	srv       server
	setLimits func(*config.Config) // applies a reloaded config's limits to new sessions
	listeners []net.Listener
}

// New builds an App from cfg: opens the store in cfg.DataDir, ensures TLS
// material, and prepares one SMTP server per configured listener kind.
// Nothing is bound until Start or Run.
func New(cfg *config.Config, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{log: logger, cfg: cfg, serveErr: make(chan error, 16), done: make(chan struct{}),
		sessions: limit.NewCounter(cfg.Limits.Sessions)}
	certPath, keyPath := tlsPaths(cfg)
	if err := certs.EnsureSelfSigned(certPath, keyPath, cfg.Hostname); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	r, err := certs.NewReloader(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	a.certs = r
	st, err := sqlstore.Open(cfg.DataDir, sqlstore.Options{Logger: logger.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	a.st = st
	a.auth = auth.New(st, auth.Options{
		Logger:      logger.With("component", "auth"),
		MaxFailures: cfg.Limits.AuthFailures,
		Lockout:     time.Duration(cfg.Limits.AuthLockout),
	})
	a.backend = delivery.NewLocal(st, delivery.LocalOptions{Logger: logger.With("component", "delivery")})
	a.servers = []*endpoint{
		a.newSMTP(ListenSMTP, smtpserver.ModeMX),
		a.newSMTP(ListenSubmission, smtpserver.ModeSubmission),
		a.newSMTP(ListenSubmissions, smtpserver.ModeSubmissions),
		a.newIMAP(ListenIMAP, false),
		a.newIMAP(ListenIMAPS, true),
	}
	maildrops := pop3server.NewMaildrops() // one lock table for 110 and 995
	a.servers = append(a.servers, a.newPOP3(ListenPOP3, false, maildrops), a.newPOP3(ListenPOP3S, true, maildrops))
	return a, nil
}

// tlsPaths returns the absolute certificate and key paths of cfg.
func tlsPaths(cfg *config.Config) (string, string) {
	cert, key := cfg.TLS.Cert, cfg.TLS.Key
	if cert == "" {
		cert = "tls/cert.pem"
	}
	if key == "" {
		key = "tls/key.pem"
	}
	return cfg.Abs(cert), cfg.Abs(key)
}

func (a *App) newSMTP(name string, mode smtpserver.Mode) *endpoint {
	l := smtpLimits(a.cfg.Limits)
	srv := smtpserver.New(smtpserver.Options{
		Mode:            mode,
		Hostname:        a.cfg.Hostname,
		TLSConfig:       a.certs.TLSConfig(),
		Backend:         a.backend,
		Auth:            a.auth,
		Logger:          a.log.With("component", "smtp", "listener", name),
		MaxMessageBytes: l.MaxMessageBytes,
		MaxRecipients:   l.MaxRecipients,
		MaxLineLength:   l.MaxLineLength,
		MaxConnsPerIP:   l.MaxConnsPerIP,
		MaxErrors:       l.MaxErrors,
		CommandTimeout:  l.CommandTimeout,
		DataTimeout:     l.DataTimeout,
		Sessions:        a.sessions,
	})
	return &endpoint{name: name, srv: srv, setLimits: func(c *config.Config) { srv.SetLimits(smtpLimits(c.Limits)) }}
}

func (a *App) newIMAP(name string, implicitTLS bool) *endpoint {
	l := imapLimits(a.cfg)
	srv := imapserver.New(imapserver.Options{
		Hostname:           a.cfg.Hostname,
		TLSConfig:          a.certs.TLSConfig(),
		ImplicitTLS:        implicitTLS,
		Store:              a.st,
		Auth:               a.auth,
		Logger:             a.log.With("component", "imap", "listener", name),
		MaxLine:            l.MaxLine,
		MaxLiteral:         l.MaxLiteral,
		MaxConnsPerIP:      l.MaxConnsPerIP,
		MaxConnsPerAccount: l.MaxConnsPerAccount,
		MaxErrors:          l.MaxErrors,
		AutoLogout:         l.AutoLogout,
		CommandTimeout:     l.CommandTimeout,
		Sessions:           a.sessions,
	})
	return &endpoint{name: name, srv: srv, setLimits: func(c *config.Config) { srv.SetLimits(imapLimits(c)) }}
}

func (a *App) newPOP3(name string, implicitTLS bool, maildrops *pop3server.Maildrops) *endpoint {
	srv := pop3server.New(pop3server.Options{
		Hostname:    a.cfg.Hostname,
		TLSConfig:   a.certs.TLSConfig(),
		ImplicitTLS: implicitTLS,
		Store:       a.st,
		Auth:        a.auth,
		Logger:      a.log.With("component", "pop3", "listener", name),
		Limits:      pop3Limits(a.cfg),
		Sessions:    a.sessions,
		Maildrops:   maildrops,
	})
	return &endpoint{name: name, srv: srv, setLimits: func(c *config.Config) { srv.SetLimits(pop3Limits(c)) }}
}

// pop3Limits maps [limits] and [pop3] to a POP3 server's settings.
func pop3Limits(c *config.Config) pop3server.Limits {
	return pop3server.Limits{
		MaxLine:           c.Limits.LineLength,
		MaxConnsPerIP:     c.Limits.ConnectionsPerIP,
		MaxErrors:         c.Limits.ErrorsPerSession,
		MaxCommands:       c.POP3.CommandsPerSession,
		IdleTimeout:       time.Duration(c.POP3.IdleTimeout),
		Maildrop:          slices.Clone(c.POP3.Maildrop),
		Delete:            c.POP3.Delete,
		PlaintextLoopback: c.POP3.PlaintextLoopback,
		LoginDelay:        time.Duration(c.POP3.LoginDelay),
	}
}

// imapLimits maps [limits] and [imap] to an IMAP server's per-connection
// limits: message_size is the largest literal (APPENDLIMIT).
func imapLimits(c *config.Config) imapserver.Limits {
	return imapserver.Limits{
		MaxLine:            c.IMAP.LineLength,
		MaxLiteral:         int64(c.Limits.MessageSize),
		MaxConnsPerIP:      c.Limits.ConnectionsPerIP,
		MaxConnsPerAccount: c.IMAP.ConnectionsPerAccount,
		MaxErrors:          c.Limits.ErrorsPerSession,
		AutoLogout:         time.Duration(c.IMAP.Autologout),
		CommandTimeout:     time.Duration(c.Limits.CommandTimeout),
	}
}

// smtpLimits maps the config's [limits] to an SMTP server's per-connection
// limits (limits.sessions is the shared counter, auth_* the authenticator's).
func smtpLimits(l config.Limits) smtpserver.Limits {
	return smtpserver.Limits{
		MaxMessageBytes: int64(l.MessageSize),
		MaxRecipients:   l.RecipientsPerMessage,
		MaxLineLength:   l.LineLength,
		MaxConnsPerIP:   l.ConnectionsPerIP,
		MaxErrors:       l.ErrorsPerSession,
		CommandTimeout:  time.Duration(l.CommandTimeout),
		DataTimeout:     time.Duration(l.DataTimeout),
	}
}

// Store returns the App's store (for administration done in-process, and tests).
func (a *App) Store() store.Store { return a.st }

// listenAddrs returns the configured addresses of a listener kind.
func listenAddrs(cfg *config.Config, name string) []string {
	switch name {
	case ListenSMTP:
		return cfg.Listen.SMTP
	case ListenSubmission:
		return cfg.Listen.Submission
	case ListenSubmissions:
		return cfg.Listen.Submissions
	case ListenIMAP:
		return cfg.Listen.IMAP
	case ListenIMAPS:
		return cfg.Listen.IMAPS
	case ListenPOP3:
		return cfg.Listen.POP3
	case ListenPOP3S:
		return cfg.Listen.POP3S
	}
	return nil
}

// Start binds every configured listener and starts serving. Either all
// listeners are bound or none is (the error names the one that failed).
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.closed {
		return errors.New("app: already started or shut down")
	}
	// No TCP keepalive probes: every endpoint has its own idle timeouts,
	// and keepalive costs setsockopt calls on every accepted connection.
	lc := net.ListenConfig{KeepAlive: -1}
	var bound []net.Listener
	for _, ep := range a.servers {
		for _, addr := range listenAddrs(a.cfg, ep.name) {
			l, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				for _, b := range bound {
					b.Close()
				}
				for _, ep := range a.servers {
					ep.listeners = nil
				}
				return fmt.Errorf("listen %s %s: %w", ep.name, addr, err)
			}
			bound = append(bound, l)
			ep.listeners = append(ep.listeners, l)
		}
	}
	a.started = true
	for _, ep := range a.servers {
		for _, l := range ep.listeners {
			go a.serve(ep, l)
		}
	}
	return nil
}

func (a *App) serve(ep *endpoint, l net.Listener) {
	err := ep.srv.Serve(l)
	if err != nil && !errors.Is(err, smtpserver.ErrServerClosed) && !errors.Is(err, imapserver.ErrServerClosed) &&
		!errors.Is(err, pop3server.ErrServerClosed) {
		a.log.Error("server stopped", "listener", ep.name, "addr", l.Addr().String(), "err", err)
		a.serveErr <- fmt.Errorf("%s %s: %w", ep.name, l.Addr(), err)
	}
}

// Run starts the App and serves until ctx ends (then shuts down
// gracefully within DefaultShutdownTimeout), Shutdown is called, or a
// server fails.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
	case <-a.done:
		return nil
	case runErr = <-a.serveErr:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// Addrs returns the bound addresses per listener name (after Start).
func (a *App) Addrs() map[string][]net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]net.Addr{}
	for _, ep := range a.servers {
		for _, l := range ep.listeners {
			out[ep.name] = append(out[ep.name], l.Addr())
		}
	}
	return out
}

// Shutdown stops every server (no new sessions; sessions in flight finish
// until ctx ends) and closes the store. Safe to call more than once.
func (a *App) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	close(a.done)
	servers := a.servers
	started := a.started
	a.mu.Unlock()

	var errs []error
	if started {
		var wg sync.WaitGroup
		errCh := make(chan error, len(servers))
		for _, ep := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := ep.srv.Shutdown(ctx); err != nil {
					errCh <- fmt.Errorf("%s: %w", ep.name, err)
				}
			}()
		}
		wg.Wait()
		close(errCh)
		// A listener whose Serve had not begun when Shutdown came is
		// not known to its server: close every one here (closing twice
		// is harmless).
		for _, ep := range servers {
			for _, l := range ep.listeners {
				l.Close()
			}
		}
		for err := range errCh {
			errs = append(errs, err)
		}
	}
	if err := a.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	a.log.Info("shut down")
	return errors.Join(errs...)
}

// Reload re-reads the config file. What applies at once: log.level (when
// LogLevel is set) and every key of [limits], for sessions that start
// afterwards (sessions already open keep the limits they started with;
// a lower limits.sessions refuses new sessions until enough have ended;
// auth_failures and auth_lockout apply to the next failure). The TLS
// certificate files are reloaded too. Changes to hostname, data_dir,
// [listen], tls.cert/tls.key and log.format need a restart: they are
// logged by key and not applied, and are reported again on every reload
// until the server is restarted. An invalid file changes nothing: the
// running config is kept and the error logged and returned.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.mu.Lock()
	old := a.cfg
	a.mu.Unlock()
	var errs []error
	if old.Path != "" {
		cfg, err := config.Load(old.Path)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reload config (running config kept): %w", err))
		} else {
			a.applyConfig(old, cfg)
		}
	}
	if err := a.certs.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("reload certificates: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Error("reload failed", "err", err)
		return err
	}
	a.log.Info("reloaded")
	return nil
}

// applyConfig takes what can change at run time from cfg and keeps the
// rest of old, so a.cfg always describes what is running.
func (a *App) applyConfig(old, cfg *config.Config) {
	if a.LogLevel != nil {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(cfg.Log.Level)); err == nil {
			a.LogLevel.Set(lvl)
		} else if cfg.Log.Level != "" {
			a.log.Warn("reload: bad log level", "level", cfg.Log.Level)
		}
	}
	if cfg.Limits != old.Limits || cfg.IMAP != old.IMAP || !pop3Equal(old.POP3, cfg.POP3) {
		l := cfg.Limits
		for _, ep := range a.servers {
			ep.setLimits(cfg)
		}
		a.sessions.SetMax(l.Sessions)
		a.auth.SetLockout(l.AuthFailures, time.Duration(l.AuthLockout))
		a.log.Info("reload: limits apply to new sessions", "changed", changedLimits(old, cfg))
	}
	if keys := restartKeys(old, cfg); len(keys) > 0 {
		a.log.Warn("reload: these settings were not applied and need a restart", "keys", keys)
	}
	eff := *cfg
	eff.Path, eff.Hostname, eff.DataDir = old.Path, old.Hostname, old.DataDir
	eff.Listen, eff.TLS, eff.Log.Format = old.Listen, old.TLS, old.Log.Format
	a.mu.Lock()
	a.cfg = &eff
	a.mu.Unlock()
}

// restartKeys names the keys that differ between old and cfg and cannot
// change without a restart.
func restartKeys(old, cfg *config.Config) []string {
	var keys []string
	add := func(key string, differ bool) {
		if differ {
			keys = append(keys, key)
		}
	}
	add("hostname", old.Hostname != cfg.Hostname)
	add("data_dir", old.DataDir != cfg.DataDir)
	for _, x := range []struct {
		key      string
		old, new []string
	}{
		{"listen.smtp", old.Listen.SMTP, cfg.Listen.SMTP},
		{"listen.submission", old.Listen.Submission, cfg.Listen.Submission},
		{"listen.submissions", old.Listen.Submissions, cfg.Listen.Submissions},
		{"listen.imap", old.Listen.IMAP, cfg.Listen.IMAP},
		{"listen.imaps", old.Listen.IMAPS, cfg.Listen.IMAPS},
		{"listen.pop3", old.Listen.POP3, cfg.Listen.POP3},
		{"listen.pop3s", old.Listen.POP3S, cfg.Listen.POP3S},
	} {
		add(x.key, !slices.Equal(x.old, x.new))
	}
	add("tls.cert", old.TLS.Cert != cfg.TLS.Cert)
	add("tls.key", old.TLS.Key != cfg.TLS.Key)
	add("log.format", old.Log.Format != cfg.Log.Format)
	return keys
}

func pop3Equal(a, b config.POP3) bool {
	return slices.Equal(a.Maildrop, b.Maildrop) && a.Delete == b.Delete && a.PlaintextLoopback == b.PlaintextLoopback &&
		a.IdleTimeout == b.IdleTimeout && a.CommandsPerSession == b.CommandsPerSession && a.LoginDelay == b.LoginDelay
}

// changedLimits names the [limits], [imap] and [pop3] keys that differ, for the log.
func changedLimits(oc, nc *config.Config) []string {
	o, n := oc.Limits, nc.Limits
	var keys []string
	add := func(key string, differ bool) {
		if differ {
			keys = append(keys, key)
		}
	}
	add("message_size", o.MessageSize != n.MessageSize)
	add("recipients_per_message", o.RecipientsPerMessage != n.RecipientsPerMessage)
	add("line_length", o.LineLength != n.LineLength)
	add("connections_per_ip", o.ConnectionsPerIP != n.ConnectionsPerIP)
	add("sessions", o.Sessions != n.Sessions)
	add("errors_per_session", o.ErrorsPerSession != n.ErrorsPerSession)
	add("auth_failures", o.AuthFailures != n.AuthFailures)
	add("auth_lockout", o.AuthLockout != n.AuthLockout)
	add("command_timeout", o.CommandTimeout != n.CommandTimeout)
	add("data_timeout", o.DataTimeout != n.DataTimeout)
	add("imap.line_length", oc.IMAP.LineLength != nc.IMAP.LineLength)
	add("imap.connections_per_account", oc.IMAP.ConnectionsPerAccount != nc.IMAP.ConnectionsPerAccount)
	add("imap.autologout", oc.IMAP.Autologout != nc.IMAP.Autologout)
	op, np := oc.POP3, nc.POP3
	add("pop3.maildrop", !slices.Equal(op.Maildrop, np.Maildrop))
	add("pop3.delete", op.Delete != np.Delete)
	add("pop3.plaintext_loopback", op.PlaintextLoopback != np.PlaintextLoopback)
	add("pop3.idle_timeout", op.IdleTimeout != np.IdleTimeout)
	add("pop3.commands_per_session", op.CommandsPerSession != np.CommandsPerSession)
	add("pop3.login_delay", op.LoginDelay != np.LoginDelay)
	return keys
}
