// Command imapload is the load driver of bench/imap.sh: a raw IMAP4
// client (plain TCP, optionally STARTTLS; no IMAP library, so the figures
// measure the server) plus the deterministic test-mail generator.
//
//	imapload gen  -dir D -n N [-seed S]     write N messages as a Maildir (D/cur)
//	imapload hash -password P               print a Dovecot passdb hash with
//	                                        Pillarbox's argon2id parameters
//	imapload run  -addr A -users U,... ...  the throughput steps, JSON lines on stdout
//	imapload idle -addr A -users U,... -n N hold N connections in IDLE, report memory
//
// Invariants: message i of seed S is a pure function of (S, i)
// (genMessage), and the SEARCH needles are placed by index, so the
// expected hit counts are known without reading the mail (query.expected).
// On disk: gen writes D/cur/<date>.M<i>P<seed>.bench,S=<size>:2,<flags>
// with LF line endings and the file's mtime set to the Date header.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"pillarbox/bench/internal/loadutil"
	"time"
)

func main() {
	loadutil.Main("imapload", loadutil.Gen(10000, writeMaildir), loadutil.HashCmd,
		loadutil.Cmd{Name: "run", Run: cmdRun}, loadutil.Cmd{Name: "idle", Run: cmdIdle})
}

// writeMaildir writes messages 0..n-1 of seed into the Maildir dir.
func writeMaildir(dir string, n int, seed uint64) error {
	var total, minSize, maxSize int
	for i := 0; i < n; i++ {
		msg, date, flags := genMessage(seed, i)
		name := fmt.Sprintf("%010d.M%dP%d.bench,S=%d:2,%s", date.Unix(), i, seed, len(msg), flags)
		if err := loadutil.WriteMessage(dir, name, msg, date); err != nil {
			return err
		}
		total += len(msg)
		if i == 0 || len(msg) < minSize {
			minSize = len(msg)
		}
		maxSize = max(maxSize, len(msg))
	}
	log.Printf("gen: %d messages, %.1f MB (min %d, mean %d, max %d bytes) in %s",
		n, float64(total)/1e6, minSize, total/max(1, n), maxSize, dir)
	for _, q := range append(append([]query{}, headerQueries...), bodyQueries...) {
		log.Printf("gen:   SEARCH %-28s expected %d", q, q.expected(n))
	}
	return nil
}

// registerTarget adds the server flags of run and idle to fs.
func registerTarget(fs *flag.FlagSet) *loadutil.Flags {
	var tf loadutil.Flags
	tf.Register(fs, "127.0.0.1:143", "starttls", "starttls or plain", "comma-separated logins, one per client")
	return &tf
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	tf := registerTarget(fs)
	rc := runConfig{out: os.Stdout}
	fs.IntVar(&rc.msgs, "msgs", 10000, "messages in each user's INBOX (from gen)")
	fs.Uint64Var(&rc.seed, "seed", 1, "generator seed used for the INBOX")
	fs.IntVar(&rc.logins, "logins", 20, "connect+LOGIN+LOGOUT cycles per client")
	fs.IntVar(&rc.selects, "selects", 20, "SELECT INBOX per client")
	fs.IntVar(&rc.fetches, "fetches", 5, "FETCH 1:* (FLAGS UID ENVELOPE) per client")
	fs.IntVar(&rc.bodies, "bodies", 1000, "UID FETCH n (BODY.PEEK[]) per client")
	fs.IntVar(&rc.hdrRound, "header-search-rounds", 3, "rounds over the header SEARCH queries per client")
	fs.IntVar(&rc.bodRound, "body-search-rounds", 1, "rounds over the BODY SEARCH queries per client")
	fs.IntVar(&rc.stores, "stores", 1000, `UID STORE n +FLAGS (\Flagged) per client`)
	fs.IntVar(&rc.appends, "appends", 1000, "APPENDs per client")
	_ = fs.Parse(args)
	var err error
	if rc.Target, err = tf.Target(); err != nil {
		return err
	}
	return rc.run()
}

func cmdIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	tf := registerTarget(fs)
	ic := idleConfig{out: os.Stdout}
	fs.IntVar(&ic.n, "n", 10000, "connections")
	fs.IntVar(&ic.openers, "openers", 32, "connections being set up at once")
	fs.DurationVar(&ic.hold, "hold", 10*time.Second, "how long to hold them all in IDLE while sampling memory")
	_ = fs.Parse(args)
	var err error
	if ic.Target, err = tf.Target(); err != nil {
		return err
	}
	ic.Dial.ReadBuf, ic.Dial.WriteBuf = 4096, 4096
	return ic.run()
}
