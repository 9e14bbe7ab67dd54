// Package e2e runs the real pillarbox binary against independent clients
// (swaks, Python's smtplib, Go's net/smtp) over loopback sockets, and
// kills it with SIGKILL under load to check durability.
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pillarbox-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "pillarbox")
	build := exec.Command("go", "build", "-race", "-o", binPath, "pillarbox/cmd/pillarbox")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if os.Getenv("PILLARBOX_E2E_NORACE") != "" {
		build = exec.Command("go", "build", "-o", binPath, "pillarbox/cmd/pillarbox")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pillarbox:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one pillarbox data directory with a config on free loopback ports.
type instance struct {
	t       *testing.T
	dir     string
	cfg     string
	ports   map[string]int
	cmd     *exec.Cmd
	logs    *bytes.Buffer
	waitErr chan error
}

// freePorts returns n distinct free loopback ports: each is held open
// until all are chosen, so the kernel cannot hand out one twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// newInstance writes a config with smtp, submission, submissions, imap,
// imaps, pop3 and pop3s on free ports, adds domain example.test and account
// user@example.test (password "secret-pass-1").
func newInstance(t *testing.T, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{t: t, dir: dir, cfg: filepath.Join(dir, "pillarbox.toml"), ports: map[string]int{}}
	names := []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"}
	for i, p := range freePorts(t, len(names)) {
		in.ports[names[i]] = p
	}
	conf := fmt.Sprintf(`hostname = "mail.example.test"
[listen]
smtp = ["127.0.0.1:%d"]
submission = ["127.0.0.1:%d"]
submissions = ["127.0.0.1:%d"]
imap = ["127.0.0.1:%d"]
imaps = ["127.0.0.1:%d"]
pop3 = ["127.0.0.1:%d"]
pop3s = ["127.0.0.1:%d"]
%s
`, in.ports["smtp"], in.ports["submission"], in.ports["submissions"], in.ports["imap"], in.ports["imaps"],
		in.ports["pop3"], in.ports["pop3s"], extra)
	if err := os.WriteFile(in.cfg, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	in.run("domain", "add", "example.test")
	in.runStdin("secret-pass-1\n", "account", "add", "user@example.test", "--password-stdin")
	return in
}

func (in *instance) command(args ...string) *exec.Cmd {
	cmd := exec.Command(binPath, append([]string{"--config", in.cfg}, args...)...)
	cmd.Env = append(os.Environ(), "PILLARBOX_CONFIG=")
	return cmd
}

// run runs an admin command and returns its stdout; it fails the test on error.
func (in *instance) run(args ...string) string {
	in.t.Helper()
	return in.runStdin("", args...)
}

func (in *instance) runStdin(stdin string, args ...string) string {
	in.t.Helper()
	cmd := in.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		in.t.Fatalf("pillarbox %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// start runs `pillarbox serve` and waits until the SMTP port answers.
func (in *instance) start() {
	in.t.Helper()
	in.logs = &bytes.Buffer{}
	in.cmd = in.command("serve")
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.waitErr = make(chan error, 1)
	go func(c *exec.Cmd) { in.waitErr <- c.Wait() }(in.cmd)
	in.t.Cleanup(func() { in.kill() })
	addr := fmt.Sprintf("127.0.0.1:%d", in.ports["smtp"])
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "220") {
				return
			}
		}
		select {
		case err := <-in.waitErr:
			in.t.Fatalf("pillarbox serve exited: %v\n%s", err, in.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	in.t.Fatalf("pillarbox serve did not answer on %s\n%s", addr, in.logs.String())
}

// kill sends SIGKILL and waits for the process.
func (in *instance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	in.cmd.Process.Kill()
	<-in.waitErr
	in.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() error {
	if in.cmd == nil {
		return nil
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.waitErr:
		in.cmd = nil
		return err
	case <-time.After(60 * time.Second):
		in.kill()
		return fmt.Errorf("serve did not exit after SIGTERM")
	}
}

func (in *instance) addr(name string) string {
	return fmt.Sprintf("127.0.0.1:%d", in.ports[name])
}

// exportMbox returns the account's mailbox (default INBOX) as mbox text.
func (in *instance) exportMbox(email, mailbox string) string {
	in.t.Helper()
	args := []string{"export", email, "--format", "mbox", "--output", "-"}
	if mailbox != "" {
		args = append(args, "--mailbox", mailbox)
	}
	return in.run(args...)
}
