package e2e

import (
	"fmt"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendOne sends one message over an existing client; it returns nil only
// when the server answered 250 to the end of DATA.
func sendOne(c *smtp.Client, subject string) error {
	if err := c.Mail("load@remote.test"); err != nil {
		return err
	}
	if err := c.Rcpt("user@example.test"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	body := fmt.Sprintf("From: load@remote.test\r\nTo: user@example.test\r\nSubject: %s\r\n\r\n%s\r\n",
		subject, strings.Repeat("crash test body line\r\n", 150))
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

// load runs workers that send messages until stop is closed or the server
// goes away; it returns the subjects the server acknowledged.
func load(addr string, round, workers int, stop <-chan struct{}) []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; {
				c, err := smtp.Dial(addr)
				if err != nil {
					return
				}
				for j := 0; j < 10; j++ {
					select {
					case <-stop:
						c.Close()
						return
					default:
					}
					subj := fmt.Sprintf("crash-%d-%d-%d", round, w, i)
					i++
					if err := sendOne(c, subj); err != nil {
						c.Close()
						return
					}
					mu.Lock()
					acked = append(acked, subj)
					mu.Unlock()
				}
				c.Quit()
			}
		}(w)
	}
	wg.Wait()
	return acked
}

// TestCrashSIGKILL kills the server with SIGKILL while 8 clients deliver,
// twice, and checks that every acknowledged message is in INBOX exactly
// once after restart (read back with `pillarbox export`), and that no
// message appears twice.
func TestCrashSIGKILL(t *testing.T) {
	in := newInstance(t, "")
	var all []string
	for round := 0; round < 2; round++ {
		in.start()
		stop := make(chan struct{})
		done := make(chan []string)
		go func() { done <- load(in.addr("smtp"), round, 8, stop) }()
		// Let some messages through, then kill mid-flight.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			if n := strings.Count(in.exportMboxQuiet(), "\nSubject: crash-"); n >= 100*(round+1) {
				break
			}
		}
		in.kill()
		close(stop)
		acked := <-done
		if len(acked) == 0 {
			t.Fatalf("round %d: no message was acknowledged before the kill\n%s", round, in.logs.String())
		}
		all = append(all, acked...)
	}
	in.start()
	mbox := in.exportMbox("user@example.test", "")
	for _, s := range all {
		if n := countSubject(mbox, s); n != 1 {
			t.Errorf("acknowledged message %q present %d times, want exactly 1", s, n)
		}
	}
	seen := map[string]int{}
	for _, line := range strings.Split(mbox, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "Subject: crash-") {
			seen[line]++
		}
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("%s stored %d times", s, n)
		}
	}
	t.Logf("acknowledged %d messages across 2 SIGKILLs; %d distinct in INBOX", len(all), len(seen))
	if err := in.stop(); err != nil {
		t.Errorf("SIGTERM after crash rounds: %v", err)
	}
}

// exportMboxQuiet exports INBOX and returns "" on error (the store may be busy).
func (in *instance) exportMboxQuiet() string {
	cmd := in.command("export", "user@example.test", "--format", "mbox", "--output", "-")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// TestSIGTERMGraceful stops the server while a transaction is open: the
// session gets 421 (or finishes), the process exits 0, and what was
// acknowledged is kept.
func TestSIGTERMGraceful(t *testing.T) {
	in := newInstance(t, "")
	in.start()
	d := dial(t, in.addr("smtp"))
	d.send("EHLO client.test")
	d.send("MAIL FROM:<a@remote.test>")
	d.send("RCPT TO:<user@example.test>")
	if r := d.send("DATA"); !strings.HasPrefix(r, "354") {
		t.Fatalf("DATA: %q", r)
	}
	d.c.Write([]byte("Subject: before-term\r\n\r\nbody\r\n.\r\n"))
	if r := d.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("end of DATA: %q", r)
	}
	d.send("MAIL FROM:<a@remote.test>")
	if err := in.stop(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, in.logs.String())
	}
	// The idle session in a transaction was told 421 and closed.
	d.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := d.r.ReadString('\n')
	if line != "" && !strings.HasPrefix(line, "421") {
		t.Errorf("after shutdown the session got %q, want 421 or close", line)
	}
	if n := countSubject(in.exportMbox("user@example.test", ""), "before-term"); n != 1 {
		t.Errorf("acknowledged message present %d times after SIGTERM", n)
	}
}
