package sqlstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"pillarbox/internal/store"
)

const crashDirEnv = "PILLARBOX_SQLSTORE_CRASH_DIR"

// TestCrashChild is the child of TestCrash: it delivers from several
// goroutines until killed and prints "ack TAG UID" after each Deliver
// that returned nil.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only run as TestCrash's child process")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	a, err := s.Account(context.Background(), "user@example.com")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := 0; ; w++ {
		if w < 8 {
			go func() {
				for i := 0; ; i++ {
					tag := fmt.Sprintf("w%d-%d", w, i)
					body := msg(tag)
					if i%4 == 0 {
						body = bigMsg(tag) // a file blob
					}
					res, err := s.Deliver(context.Background(), &store.Delivery{
						Blob:  bytes.NewReader([]byte(body)),
						Local: []store.LocalRecipient{{AccountID: a.ID}},
					})
					mu.Lock()
					if err != nil {
						fmt.Fprintln(out, "error", err)
					} else {
						fmt.Fprintln(out, "ack", tag, res.Local[0].UID)
					}
					out.Flush() // the ack is out before the next delivery starts
					mu.Unlock()
				}
			}()
			continue
		}
		select {} // until SIGKILL
	}
}

// TestCrash kills a delivering child process with SIGKILL and checks,
// after reopening, that every acknowledged message is present exactly
// once, with the acknowledged UID, and that no message lacks its blob.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	setup(t, s)
	must(t, s.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	acked := map[string]string{} // tag -> UID
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "ack":
			acked[f[1]] = f[2]
		case len(f) > 0 && f[0] == "error":
			t.Errorf("child: %s", sc.Text())
		}
		if len(acked) >= 400 && !killed {
			must(t, cmd.Process.Kill()) // SIGKILL, mid-delivery
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child ended before being killed, %d acks", len(acked))
	}

	s = openTest(t, dir, Options{})
	ctx := context.Background()
	a, err := s.Account(ctx, "user@example.com")
	must(t, err)
	inbox := mustInbox(t, s, a.ID)
	msgs, err := s.Messages(ctx, inbox, 1, false)
	must(t, err)
	found := map[string]int{}
	big := 0
	for _, m := range msgs {
		if m.Size > inlineMax {
			big++
		}
		body := readMsg(t, s, inbox, m.UID) // no message without its blob
		_, rest, _ := strings.Cut(body, "Subject: ")
		tag, _, _ := strings.Cut(rest, "\r\n")
		found[tag]++
		if uid, ok := acked[tag]; ok && uid != fmt.Sprint(m.UID) {
			t.Errorf("%s acknowledged as UID %s, stored as %d", tag, uid, m.UID)
		}
	}
	for tag := range acked {
		if found[tag] != 1 {
			t.Errorf("acknowledged %s found %d times", tag, found[tag])
		}
	}
	for tag, n := range found {
		if n != 1 {
			t.Errorf("%s stored %d times", tag, n)
		}
	}
	// Every blob file left has metadata (orphans were cleaned at Open).
	if nb := len(blobFiles(t, dir)); nb != big || big == 0 {
		t.Errorf("%d blob files for %d large messages", nb, big)
	}
	t.Logf("%d acknowledged, %d stored (%d large); stored but unacknowledged ones were in flight", len(acked), len(msgs), big)
}
