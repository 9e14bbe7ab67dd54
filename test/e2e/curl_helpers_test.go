package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"
)

// curlRunner runs curl as the instance's user, with the given TLS
// arguments (e.g. "-k", or "--cacert", path).
type curlRunner struct {
	t    *testing.T
	in   *instance
	bin  string
	base []string
}

func newCurl(t *testing.T, in *instance, bin string, tlsArgs ...string) *curlRunner {
	base := append([]string{"-sS", "--max-time", "60"}, tlsArgs...)
	base = append(base, "--user", "user@example.test:secret-pass-1")
	return &curlRunner{t: t, in: in, bin: bin, base: base}
}

// run returns curl's stdout and 0, or its stderr and exit code.
func (c *curlRunner) run(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(append([]string{}, c.base...), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return errb.String(), exit.ExitCode()
	case err != nil:
		c.t.Fatal(err)
	}
	return out.String(), 0
}

// ok is run that fails the test unless curl exits 0.
func (c *curlRunner) ok(args ...string) string {
	c.t.Helper()
	out, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("curl %v: exit %d: %s\nserver log:\n%s", args, code, out, c.in.logs.String())
	}
	return out
}
