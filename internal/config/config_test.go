package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pillarbox.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default() invalid: %v", err)
	}
	l := d.Limits
	if l.MessageSize != 50<<20 || l.RecipientsPerMessage != 100 || l.LineLength != 4096 ||
		l.ConnectionsPerIP != 20 || l.Sessions != 2000 || l.ErrorsPerSession != 20 || l.AuthFailures != 5 ||
		l.AuthLockout.D() != 15*time.Minute || l.CommandTimeout.D() != 5*time.Minute || l.DataTimeout.D() != 10*time.Minute {
		t.Errorf("limits = %+v", l)
	}
	if d.Listen.SMTP[0] != ":25" || d.Listen.Submission[0] != ":587" || d.Listen.Submissions[0] != ":465" ||
		d.Listen.IMAP[0] != ":143" || d.Listen.IMAPS[0] != ":993" || d.Listen.POP3[0] != ":110" || d.Listen.POP3S[0] != ":995" {
		t.Errorf("listen = %+v", d.Listen)
	}
	if d.TLS != (TLS{"tls/cert.pem", "tls/key.pem"}) || d.Log != (Log{"info", "text"}) || d.Submission.SaveSent {
		t.Errorf("tls %+v log %+v submission %+v", d.TLS, d.Log, d.Submission)
	}
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	p := writeFile(t, "")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != p || c.DataDir != filepath.Dir(p) {
		t.Errorf("Path %q DataDir %q", c.Path, c.DataDir)
	}
	want := Default()
	want.Path, want.DataDir = c.Path, c.DataDir
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestExampleRoundTrip(t *testing.T) {
	ex := Example()
	p := writeFile(t, ex)
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Example does not load: %v\n%s", err, ex)
	}
	want := Default()
	want.Path, want.DataDir = c.Path, c.DataDir
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Example loads as %+v\nwant %+v", c, want)
	}
	// Every key of the schema appears, uncommented, in the example.
	for _, key := range []string{"hostname", "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s",
		"cert", "key", "message_size", "recipients_per_message", "line_length", "connections_per_ip", "sessions",
		"errors_per_session", "auth_failures", "auth_lockout", "command_timeout", "data_timeout", "level", "format",
		"save_sent"} {
		if !strings.Contains(ex, "\n"+key+" = ") {
			t.Errorf("key %s missing from Example", key)
		}
	}
	if !strings.Contains(ex, "# data_dir = ") {
		t.Error("data_dir not documented")
	}
}

func TestLoadValues(t *testing.T) {
	p := writeFile(t, `
hostname = "mail.example.test"
data_dir = "data"
[listen]
smtp = ["127.0.0.1:1025", "[::1]:1025"]
imap = []
[tls]
cert = "/etc/ssl/mail.pem"
[limits]
message_size = "10MB"
line_length = 1000
auth_lockout = "1h30m"
data_timeout = "90s"
[submission]
save_sent = true
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mail.example.test" || c.DataDir != filepath.Join(filepath.Dir(p), "data") {
		t.Errorf("hostname %q data_dir %q", c.Hostname, c.DataDir)
	}
	if !reflect.DeepEqual(c.Listen.SMTP, []string{"127.0.0.1:1025", "[::1]:1025"}) || len(c.Listen.IMAP) != 0 ||
		!reflect.DeepEqual(c.Listen.POP3, []string{":110"}) {
		t.Errorf("listen %+v", c.Listen)
	}
	if c.Limits.MessageSize != 10_000_000 || c.Limits.LineLength != 1000 || c.Limits.AuthLockout.D() != 90*time.Minute ||
		c.Limits.DataTimeout.D() != 90*time.Second || c.Limits.Sessions != 2000 {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.Abs(c.TLS.Cert) != "/etc/ssl/mail.pem" || c.Abs(c.TLS.Key) != filepath.Join(c.DataDir, "tls/key.pem") {
		t.Errorf("Abs: %q %q", c.Abs(c.TLS.Cert), c.Abs(c.TLS.Key))
	}
	if !c.Submission.SaveSent {
		t.Error("save_sent not read")
	}
}

func TestLoadDelivery(t *testing.T) {
	p := writeFile(t, `
[delivery]
resolver = "127.0.0.1:5353"
smarthost = "relay.example.net:587"
smarthost_username = "me"
smarthost_password_file = "relay.pass"
give_up_after = "2d"
[[delivery.route]]
domain = "example.net"
host = "127.0.0.1:2525"
[[delivery.route]]
domain = "example.org"
host = "[::1]:2526"
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Delivery
	if d.Resolver != "127.0.0.1:5353" || d.Smarthost != "relay.example.net:587" || d.SmarthostTLS != SmarthostSTARTTLS ||
		d.SmarthostUsername != "me" || d.GiveUpAfter.D() != 48*time.Hour || d.FirstRetry.D() != 5*time.Minute ||
		d.Port != 25 || len(d.Route) != 2 || d.Route[1] != (Route{Domain: "example.org", Host: "[::1]:2526"}) {
		t.Errorf("delivery = %+v", d)
	}
	// Written back and read again, the routes survive.
	c.Path = ""
	q := filepath.Join(t.TempDir(), "back.toml")
	if err := Write(q, c); err != nil {
		t.Fatal(err)
	}
	back, err := Load(q)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Delivery, c.Delivery) {
		t.Errorf("after Write+Load: %+v, want %+v", back.Delivery, c.Delivery)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct{ name, text, want string }{
		{"unknown top key", `hostnme = "x"`, "unknown key hostnme"},
		{"unknown nested key", "[limits]\nmessage_sise = 5", "unknown key limits.message_sise"},
		{"unknown table", "[smtp]\nport = 25", "unknown key smtp"},
		{"syntax", "hostname = ", "line 1"},
		{"wrong type", "[limits]\nsessions = \"many\"", "sessions"},
		{"bad size", "[limits]\nmessage_size = \"50 parsecs\"", `invalid size "50 parsecs"`},
		{"size too small", "[limits]\nmessage_size = 1000", "limits.message_size: 1000B is out of range 64KiB-4GiB"},
		{"negative size", "[limits]\nmessage_size = -1", "negative"},
		{"bad duration", "[limits]\ncommand_timeout = \"5 minutes\"", `invalid duration "5 minutes"`},
		{"integer duration", "[limits]\ncommand_timeout = 300", `duration must be a string`},
		{"zero duration", "[limits]\nauth_lockout = \"0s\"", "limits.auth_lockout: 0s is out of range"},
		{"short lines", "[limits]\nline_length = 512", "limits.line_length: 512 is out of range 1000-"},
		{"no recipients", "[limits]\nrecipients_per_message = 0", "limits.recipients_per_message"},
		{"no port", "[listen]\nsmtp = [\"localhost\"]", `listen.smtp: "localhost" is not host:port`},
		{"bad port", "[listen]\nimaps = [\":imaps\"]", `listen.imaps: ":imaps": port "imaps" is not a number`},
		{"port range", "[listen]\npop3 = [\":70000\"]", "listen.pop3"},
		{"bad host", "[listen]\nsmtp = [\"bad_host:25\"]", "neither an IP address nor a host name"},
		{"duplicate", "[listen]\nimap = [\":25\"]", `listen.imap: ":25" is also in listen.smtp`},
		{"hostname", `hostname = "mail_server"`, `hostname: "mail_server" is not a valid host name`},
		{"hostname label", `hostname = "-mail.example"`, "not a valid host name"},
		{"empty cert", "[tls]\ncert = \"\"", "tls.cert: must not be empty"},
		{"log level", "[log]\nlevel = \"loud\"", `log.level: "loud"`},
		{"log format", "[log]\nformat = \"xml\"", `log.format: "xml"`},
		{"resolver", "[delivery]\nresolver = \"127.0.0.1\"", `delivery.resolver: "127.0.0.1" is not host:port`},
		{"smarthost tls", "[delivery]\nsmarthost_tls = \"maybe\"", `delivery.smarthost_tls: "maybe"`},
		{"smarthost user alone", "[delivery]\nsmarthost_username = \"u\"", "delivery.smarthost_username"},
		{"route host", "[[delivery.route]]\ndomain = \"example.net\"\nhost = \"mx\"", `delivery.route[0].host: "mx"`},
		{"route twice", "[[delivery.route]]\ndomain = \"a.example\"\nhost = \"h:25\"\n[[delivery.route]]\ndomain = \"A.example\"\nhost = \"h:26\"",
			"delivery.route[1].domain"},
		{"retry order", "[delivery]\nfirst_retry = \"2h\"", "delivery.first_retry"},
		{"concurrency", "[delivery]\nconcurrency_per_domain = 0", "delivery.concurrency"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.text)
			_, err := Load(p)
			if err == nil {
				t.Fatalf("accepted %q", tt.text)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not contain %q and the path", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Hostname = ""
	c.Limits.LineLength = 10
	c.Log.Format = "xml"
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, k := range []string{"hostname", "limits.line_length", "log.format"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%q not reported in %v", k, err)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "4096": 4096, "100B": 100, "512KiB": 512 << 10, "50MiB": 50 << 20, "50mib": 50 << 20,
		"10MB": 10_000_000, "1 GiB": 1 << 30, "2kB": 2000, "1TiB": 1 << 40, "3GB": 3e9,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "10 parsecs", "9999999999TiB", "0x10"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	for s, want := range map[Size]string{50 << 20: "50MiB", 1000: "1000B", 1536: "1536B", 0: "0B", 1 << 30: "1GiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
		if back, err := ParseSize(s.String()); err != nil || back != s {
			t.Errorf("round trip %d: %d, %v", int64(s), back, err)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Second: "90s", 90 * time.Minute: "90m",
		1500 * time.Millisecond: "1.5s", 0: "0s", 120 * time.Hour: "5d", 36 * time.Hour: "36h",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(Duration(d).String()); err != nil || back != d {
			t.Errorf("round trip %v: %v %v", d, back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5d": 120 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0d": 0, "2d30m": 48*time.Hour + 30*time.Minute,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "xd", "-1d", "5dd", "1d-1h", "", "5 days"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "pillarbox.toml")
	c := Default()
	c.Hostname = "mail.example.test"
	c.Listen.SMTP = []string{"127.0.0.1:1025"}
	c.Listen.IMAP = nil
	c.Limits.MessageSize = 1_000_000
	c.Submission.SaveSent = true
	c.DataDir = filepath.Join(dir, "sub")
	if err := Write(p, c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Path = p
	c.Listen.IMAP = []string{}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("written config loads as\n%+v\nwant\n%+v", got, c)
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), "\ndata_dir") {
		t.Error("data_dir written although it is the file's directory")
	}

	other := filepath.Join(dir, "elsewhere")
	c.DataDir = other
	if err := Write(p, c); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(p); err != nil || got.DataDir != other {
		t.Errorf("data_dir: %v, %v", got, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "sub")); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestQuote(t *testing.T) {
	c := Default()
	c.TLS.Cert = "dir \"q\"\\x\ttab\x01.pem"
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := Write(p, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil || got.TLS.Cert != c.TLS.Cert {
		t.Fatalf("quoted path: %q, %v", got.TLS.Cert, err)
	}
}
