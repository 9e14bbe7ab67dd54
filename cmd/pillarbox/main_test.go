package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/config"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// env is a data directory set up by quickstart --no-serve, and a way to
// run commands against it in-process.
type env struct {
	t       *testing.T
	dir     string
	cfgPath string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfgPath: filepath.Join(dir, "pillarbox.toml")}
	out, err := e.run("", "quickstart", "--no-serve", "--local", "--data-dir", dir,
		"--hostname", "mail.example.test", "admin@example.test")
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out)
	}
	return e
}

// run executes pillarbox args with stdin, with --config pointing at the env.
func (e *env) run(stdin string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	c := &cli{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }, rand: rand.Reader,
	}
	err := c.execute(context.Background(), append([]string{"--config", e.cfgPath, "--log-level", "error"}, args...))
	if errb.Len() > 0 {
		e.t.Logf("stderr of %v:\n%s", args, errb.String())
	}
	return out.String(), err
}

// must runs a command that must succeed and returns its output.
func (e *env) must(stdin string, args ...string) string {
	e.t.Helper()
	out, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatalf("pillarbox %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs a command that must fail with an error containing want.
func (e *env) fails(want string, stdin string, args ...string) {
	e.t.Helper()
	out, err := e.run(stdin, args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		e.t.Fatalf("pillarbox %s: err = %v (output %q), want an error containing %q", strings.Join(args, " "), err, out, want)
	}
}

// store opens the env's store for direct checks.
func (e *env) store() *sqlstore.Store {
	e.t.Helper()
	st, err := sqlstore.Open(e.dir, sqlstore.Options{NoSync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func (e *env) login(user, pw string) error {
	st := e.store()
	_, err := auth.New(st, auth.Options{Logger: discard()}).Login(context.Background(), user, pw, netip.MustParseAddr("127.0.0.1"))
	return err
}

var passwordRE = regexp.MustCompile(`Password: (\S+)`)

func TestQuickstartTwiceReuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, cfgPath: filepath.Join(dir, "pillarbox.toml")}
	args := []string{"quickstart", "--no-serve", "--local", "--port-offset", "7", "--data-dir", dir, "--hostname", "mail.example.test"}
	out := e.must("", args...)
	m := passwordRE.FindStringSubmatch(out)
	if m == nil || len(m[1]) != 20 {
		t.Fatalf("no 20-character password in:\n%s", out)
	}
	for _, want := range []string{
		"admin@example.test", "mail.example.test", "1032", "1594", "1472", "1150", "2000", "1117", "2002",
		`"v=spf1 mx -all"`, "_dmarc.example.test.", "p=quarantine",
		"_submissions._tcp.example.test.", "_submission._tcp.example.test.", "_imaps._tcp.example.test.", "_pop3s._tcp.example.test.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^  example\.test\.\s+IN\s+MX\s+10 mail\.example\.test\.$`).MatchString(out) {
		t.Errorf("no MX record in:\n%s", out)
	}
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Listen.SMTP; len(got) != 1 || got[0] != "127.0.0.1:1032" {
		t.Errorf("listen.smtp = %v", got)
	}
	if got := cfg.Listen.POP3S; len(got) != 1 || got[0] != "127.0.0.1:2002" {
		t.Errorf("listen.pop3s = %v", got)
	}
	for _, f := range []string{"tls/cert.pem", "tls/key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := e.login("admin@example.test", m[1]); err != nil {
		t.Fatalf("login with the printed password: %v", err)
	}
	before, _ := os.ReadFile(e.cfgPath)

	out = e.must("", args...)
	if passwordRE.MatchString(out) || !strings.Contains(out, "already exists; its password was not changed") ||
		!strings.Contains(out, "Using the existing config") {
		t.Errorf("second quickstart output:\n%s", out)
	}
	after, _ := os.ReadFile(e.cfgPath)
	if !bytes.Equal(before, after) {
		t.Error("second quickstart rewrote the config")
	}
	if err := e.login("admin@example.test", m[1]); err != nil {
		t.Fatalf("password changed by second quickstart: %v", err)
	}
}

func TestDomainCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must("", "domain", "add", "Other.TEST")
	e.fails("already exists", "", "domain", "add", "other.test")
	if out := e.must("", "domain", "list"); out != "example.test\nother.test\n" {
		t.Errorf("domain list = %q", out)
	}
	e.fails("still has accounts", "", "domain", "remove", "example.test")
	e.must("", "domain", "remove", "other.test")
	e.fails("not found", "", "domain", "remove", "other.test")
	if out := e.must("", "domain", "list"); out != "example.test\n" {
		t.Errorf("domain list after remove = %q", out)
	}
}

func TestAccountCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must("s3cret-pw\n", "account", "add", "Alice@Example.test", "--password-stdin", "--quota", "2MiB")
	e.fails("already exists", "x\n", "account", "add", "alice@example.test", "--password-stdin")
	e.fails("domain nope.test is not local", "x\n", "account", "add", "bob@nope.test", "--password-stdin")
	e.fails("--quota", "x\n", "account", "add", "bob@example.test", "--password-stdin", "--quota", "lots")
	out := e.must("", "account", "add", "bob@example.test")
	m := passwordRE.FindStringSubmatch(strings.Replace(out, "password:", "Password:", 1))
	if m == nil || len(m[1]) != 20 {
		t.Fatalf("no generated password in %q", out)
	}
	if err := e.login("bob@example.test", m[1]); err != nil {
		t.Errorf("bob login: %v", err)
	}
	if err := e.login("alice@example.test", "s3cret-pw"); err != nil {
		t.Errorf("alice login: %v", err)
	}
	list := e.must("", "account", "list")
	if !regexp.MustCompile(`(?m)^alice@example\.test\s+2\.0MiB\s+0B\s+false\s+default$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^bob@example\.test\s+unlimited\s+0B`).MatchString(list) {
		t.Errorf("account list:\n%s", list)
	}

	e.fails("--password-stdin", "", "account", "passwd", "alice@example.test")
	e.must("new-pw\n", "account", "passwd", "alice@example.test", "--password-stdin")
	if err := e.login("alice@example.test", "new-pw"); err != nil {
		t.Errorf("login with new password: %v", err)
	}
	if err := e.login("alice@example.test", "s3cret-pw"); err == nil {
		t.Error("old password still works")
	}
	e.must("", "account", "set", "alice@example.test", "--quota", "0", "--save-sent")
	acc, err := e.store().Account(context.Background(), "alice@example.test")
	if err != nil || acc.QuotaBytes != 0 || !acc.SaveSent {
		t.Errorf("after set: %+v, %v", acc, err)
	}
	e.must("", "account", "remove", "bob@example.test")
	e.fails("not found", "", "account", "remove", "bob@example.test")
	if strings.Contains(e.must("", "account", "list"), "bob@") {
		t.Error("bob still listed")
	}
}

// TestAccountPOP3Maildrop: account set --pop3-maildrop stores the
// maildrop (INBOX canonicalised, duplicates dropped), account list shows
// it, "" goes back to the default, and bad values change nothing.
func TestAccountPOP3Maildrop(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	maildrop := func() []string {
		t.Helper()
		acc, err := e.store().Account(context.Background(), "admin@example.test")
		if err != nil {
			t.Fatal(err)
		}
		return acc.POP3Maildrop
	}
	e.must("", "account", "set", "admin@example.test", "--pop3-maildrop", "inbox, Junk,Archive/2024,INBOX")
	want := []string{"INBOX", "Junk", "Archive/2024"}
	if got := maildrop(); !slices.Equal(got, want) {
		t.Errorf("maildrop = %q, want %q", got, want)
	}
	list := e.must("", "account", "list")
	if !regexp.MustCompile(`(?m)^EMAIL\s+QUOTA\s+USED\s+SAVE-SENT\s+POP3-MAILDROP$`).MatchString(list) ||
		!regexp.MustCompile(`(?m)^admin@example\.test\s+\S+\s+\S+\s+\S+\s+INBOX,Junk,Archive/2024$`).MatchString(list) {
		t.Errorf("account list:\n%s", list)
	}

	e.fails("empty mailbox name", "", "account", "set", "admin@example.test", "--pop3-maildrop", "INBOX,,Junk")
	e.fails("invalid mailbox name", "", "account", "set", "admin@example.test", "--pop3-maildrop", "INBOX,/Junk", "--quota", "1MiB")
	e.fails("not found", "", "account", "set", "nobody@example.test", "--pop3-maildrop", "INBOX")
	acc, err := e.store().Account(context.Background(), "admin@example.test")
	if err != nil || !slices.Equal(acc.POP3Maildrop, want) || acc.QuotaBytes != 0 {
		t.Errorf("after refused changes: %+v, %v", acc, err)
	}
	e.fails("nothing to change", "", "account", "set", "admin@example.test")

	e.must("", "account", "set", "admin@example.test", "--pop3-maildrop", "")
	if got := maildrop(); got != nil {
		t.Errorf("maildrop after reset = %q, want nil", got)
	}
	if list := e.must("", "account", "list"); !regexp.MustCompile(`(?m)^admin@example\.test\s.*\sdefault$`).MatchString(list) {
		t.Errorf("account list after reset:\n%s", list)
	}
}

func TestAliasCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must("", "alias", "add", "Info@example.test", "admin@example.test", "Someone@Elsewhere.test")
	e.must("", "alias", "add", "@example.test", "admin@example.test")
	e.fails("not found", "", "alias", "add", "x@nope.test", "admin@example.test")
	e.fails("already exists", "", "alias", "add", "info@example.test", "x@example.test")
	e.fails("already exists", "", "alias", "add", "admin@example.test", "x@example.test")
	e.fails("bad address", "", "alias", "add", "y@example.test", "not an address")
	out := e.must("", "alias", "list")
	if !regexp.MustCompile(`(?m)^info@example\.test\s+admin@example\.test, someone@elsewhere\.test$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^@example\.test\s+admin@example\.test$`).MatchString(out) {
		t.Errorf("alias list:\n%s", out)
	}
	e.must("", "alias", "remove", "info@example.test")
	e.fails("not found", "", "alias", "remove", "info@example.test")
	if strings.Contains(e.must("", "alias", "list"), "info@") {
		t.Error("removed alias still listed")
	}
}

func TestQueueCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.store()
	res, err := st.Deliver(context.Background(), &store.Delivery{
		Blob:         strings.NewReader("Subject: x\r\n\r\nbody\r\n"),
		InternalDate: time.Now(),
		Queue: &store.QueueItem{
			From: "admin@example.test", CreatedAt: time.Now(), Ret: "HDRS", EnvID: "e1",
			Recipients: []store.QueueRecipient{
				{Address: "a@remote.test", State: store.RcptPending, Notify: "FAILURE"},
				{Address: "b@remote.test", State: store.RcptPending},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	id := res.Queue.ID
	out := e.must("", "queue", "list")
	if !strings.Contains(out, id) || !strings.Contains(out, "<admin@example.test>") ||
		!strings.Contains(out, "a@remote.test (pending), b@remote.test (pending)") {
		t.Errorf("queue list:\n%s", out)
	}
	out = e.must("", "queue", "show", id)
	for _, want := range []string{"ID:       " + id, "ret=HDRS envid=e1", "a@remote.test  state=pending attempts=0 notify=FAILURE"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue show lacks %q:\n%s", want, out)
		}
	}
	e.must("", "queue", "hold", id)
	if out := e.must("", "queue", "list"); !strings.Contains(out, id+" [held]") {
		t.Errorf("held item not marked:\n%s", out)
	}
	e.must("", "queue", "release", id)
	if out := e.must("", "queue", "list"); strings.Contains(out, "[held]") {
		t.Errorf("released item still held:\n%s", out)
	}
	e.must("", "queue", "drop", id)
	e.fails("not found", "", "queue", "show", id)
	e.fails("not found", "", "queue", "drop", id)
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex := e.must("", "config", "example")
	if !strings.Contains(ex, "[listen]") || !strings.Contains(ex, "hostname") {
		t.Errorf("config example:\n%s", ex)
	}
	out := e.must("", "config", "check")
	if !strings.Contains(out, "OK") || !strings.Contains(out, "mail.example.test") {
		t.Errorf("config check:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("hostnme = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2 := &env{t: t, dir: e.dir, cfgPath: bad}
	e2.fails("hostnme", "", "config", "check")
	e3 := &env{t: t, dir: e.dir, cfgPath: filepath.Join(t.TempDir(), "none.toml")}
	e3.fails("quickstart", "", "domain", "list")
}

func TestHelpListsEverything(t *testing.T) {
	t.Parallel()
	e := &env{t: t, cfgPath: "unused"}
	out := e.must("", "--help")
	for _, cmd := range []string{"quickstart", "serve", "config", "domain", "account", "alias", "queue", "export", "import", "version", "--config", "--log-level", "--log-format"} {
		if !strings.Contains(out, cmd) {
			t.Errorf("--help lacks %q", cmd)
		}
	}
	if strings.Contains(out, "port-offset") {
		t.Error("hidden flag shown")
	}
	if out := e.must("", "version"); !strings.HasPrefix(out, "pillarbox ") {
		t.Errorf("version = %q", out)
	}
}

// The config file comes from --config, else $PILLARBOX_CONFIG, else
// pillarbox-data/pillarbox.toml; --config wins over the environment.
func TestConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must("", "domain", "add", "env.test")
	run := func(env string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		c := &cli{
			stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(k string) string {
				if k == EnvConfig {
					return env
				}
				return ""
			},
			rand: rand.Reader,
		}
		err := c.execute(context.Background(), append([]string{"--log-level", "error"}, args...))
		return out.String(), err
	}
	out, err := run(e.cfgPath, "domain", "list")
	if err != nil || !strings.Contains(out, "env.test") {
		t.Fatalf("domain list with PILLARBOX_CONFIG: %v\n%s", err, out)
	}
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := run(missing, "domain", "list"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("PILLARBOX_CONFIG naming a missing file: err = %v, want it named", err)
	}
	out, err = run(missing, "--config", e.cfgPath, "domain", "list")
	if err != nil || !strings.Contains(out, "env.test") {
		t.Fatalf("--config should win over PILLARBOX_CONFIG: %v\n%s", err, out)
	}
}
