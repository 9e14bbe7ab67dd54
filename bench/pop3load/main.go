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
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("pop3load: ")
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = cmdGen(os.Args[2:])
	case "hash":
		err = cmdHash(os.Args[2:])
	case "run":
		err = cmdRun(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pop3load gen|hash|run [flags] (pop3load CMD -h for the flags)")
	os.Exit(2)
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "Maildir to write (cur/, new/, tmp/ are created)")
	n := fs.Int("n", 5000, "number of messages")
	seed := fs.Uint64("seed", 1, "generator seed")
	_ = fs.Parse(args)
	if *dir == "" {
		return errors.New("gen: -dir is required")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(*dir, sub), 0o755); err != nil {
			return err
		}
	}
	var total int64
	perClass := map[string]int{}
	dots := 0
	for i := 0; i < *n; i++ {
		msg := genMessage(*seed, i)
		date := genDate(i)
		name := fmt.Sprintf("%010d.M%dP%d.pop3bench,S=%d,W=%d:2,", date.Unix(), i, *seed, len(msg), len(msg))
		p := filepath.Join(*dir, "cur", name)
		if err := os.WriteFile(p, msg, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, date, date); err != nil {
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
		*n, float64(total)/1e6, total/int64(max(1, *n)), strings.Join(mix, ", "), dots, *dir)
	return nil
}

// cmdHash prints "{ARGON2ID}<PHC>" for Dovecot's passdb with the argon2id
// parameters Pillarbox uses for new passwords (internal/auth/password.go:
// t=2, m=32 MiB, p=1, 16-byte salt, 32-byte key), so that a login costs
// both servers the same hashing work.
func cmdHash(args []string) error {
	fs := flag.NewFlagSet("hash", flag.ExitOnError)
	pw := fs.String("password", "", "password")
	_ = fs.Parse(args)
	if *pw == "" {
		return errors.New("hash: -password is required")
	}
	const t, m, p, keyLen = 2, 32 * 1024, 1, 32
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	key := argon2.IDKey([]byte(*pw), salt, t, m, p, keyLen)
	b64 := base64.RawStdEncoding
	fmt.Printf("{ARGON2ID}$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s\n", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(key))
	return nil
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	rc := runConfig{out: os.Stdout}
	var users, pids string
	fs.StringVar(&rc.dial.addr, "addr", "127.0.0.1:110", "server address")
	fs.StringVar(&rc.dial.tls, "tls", "plain", "plain or stls")
	fs.StringVar(&users, "users", "", "comma-separated logins, one client (and maildrop) each")
	fs.StringVar(&rc.dial.password, "password", "", "password of every user")
	fs.StringVar(&rc.label, "label", "server", "server name in the output")
	fs.StringVar(&pids, "pids", "", "comma-separated PIDs: the server's process tree roots, for memory")
	fs.DurationVar(&rc.dial.timeout, "timeout", 10*time.Minute, "limit for one command")
	fs.IntVar(&rc.msgs, "msgs", 5000, "messages in each maildrop (from gen)")
	fs.Uint64Var(&rc.seed, "seed", 1, "generator seed of the maildrops")
	fs.IntVar(&rc.rounds, "rounds", 3, "download rounds (each: all clients log in, RETR everything, QUIT)")
	fs.IntVar(&rc.round0, "round0", 0, "rounds already run on these maildrops (round 1 is marked first)")
	fs.IntVar(&rc.window, "window", 0, "RETR commands in flight per client (PIPELINING); 0: one at a time")
	_ = fs.Parse(args)
	if users == "" || rc.dial.password == "" {
		return errors.New("run: -users and -password are required")
	}
	rc.users = strings.Split(users, ",")
	for _, p := range strings.Split(pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("-pids: %w", err)
		}
		rc.pids = append(rc.pids, n)
	}
	if rc.rounds < 1 || rc.msgs < 1 {
		return errors.New("run: -rounds and -msgs must be positive")
	}
	return rc.run()
}
