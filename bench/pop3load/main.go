// Command pop3load is the load driver of bench/pop3.sh: a raw POP3
// client (plain TCP, optionally STLS; no POP3 library, so the figures
// measure the server) plus the deterministic test-mail generator.
//
//	pop3load gen  -dir D -n N [-seed S]     write N messages as a Maildir (D/cur)
//	pop3load hash -password P               print a Dovecot passdb hash with
//	                                        Pillarbox's argon2id parameters
//	pop3load run  -addr A -users U,... ...  download rounds, JSON lines on stdout
//
// Invariants: message i of seed S is a pure function of (S, i)
// (genMessage), so `run` knows the size and CRC-32C of every message a
// maildrop must hold and checks each RETR against them (any order).
// On disk: gen writes D/cur/<unix date>.M<i>P<seed>.pop3bench,S=<size>,W=<size>:2,
// with CRLF line endings (so the physical and the POP3 size are equal)
// and the file's mtime set to the Date header; names sort in index order.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"pillarbox/bench/internal/loadutil"
	"strings"
)

func main() {
	loadutil.Main("pop3load", loadutil.Gen(5000, writeMaildir), loadutil.HashCmd,
		loadutil.Cmd{Name: "run", Run: cmdRun})
}

// writeMaildir writes messages 0..n-1 of seed into the Maildir dir.
func writeMaildir(dir string, n int, seed uint64) error {
	var total int64
	perClass := map[string]int{}
	dots := 0
	for i := 0; i < n; i++ {
		msg := genMessage(seed, i)
		date := genDate(i)
		name := fmt.Sprintf("%010d.M%dP%d.pop3bench,S=%d,W=%d:2,", date.Unix(), i, seed, len(msg), len(msg))
		if err := loadutil.WriteMessage(dir, name, msg, date); err != nil {
			return err
		}
		total += int64(len(msg))
		perClass[classOf(i).name]++
		dots += strings.Count(string(msg), "\r\n.")
	}
	var mix []string
	for _, c := range classes {
		mix = append(mix, fmt.Sprintf("%d x %s", perClass[c.name], c.name))
	}
	log.Printf("gen: %d messages, %.1f MB (mean %d bytes; %s), %d lines starting with '.', in %s",
		n, float64(total)/1e6, total/int64(max(1, n)), strings.Join(mix, ", "), dots, dir)
	return nil
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var tf loadutil.Flags
	tf.Register(fs, "127.0.0.1:110", "plain", "plain or stls", "comma-separated logins, one client (and maildrop) each")
	rc := runConfig{out: os.Stdout}
	fs.IntVar(&rc.msgs, "msgs", 5000, "messages in each maildrop (from gen)")
	fs.Uint64Var(&rc.seed, "seed", 1, "generator seed of the maildrops")
	fs.IntVar(&rc.rounds, "rounds", 3, "download rounds (each: all clients log in, RETR everything, QUIT)")
	fs.IntVar(&rc.round0, "round0", 0, "rounds already run on these maildrops (round 1 is marked first)")
	fs.IntVar(&rc.window, "window", 0, "RETR commands in flight per client (PIPELINING); 0: one at a time")
	_ = fs.Parse(args)
	var err error
	if rc.Target, err = tf.Target(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if rc.rounds < 1 || rc.msgs < 1 {
		return errors.New("run: -rounds and -msgs must be positive")
	}
	return rc.run()
}
