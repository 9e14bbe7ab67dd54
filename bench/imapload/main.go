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
	log.SetPrefix("imapload: ")
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
	case "idle":
		err = cmdIdle(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: imapload gen|hash|run|idle [flags] (imapload CMD -h for the flags)")
	os.Exit(2)
}

func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "Maildir to write (cur/, new/, tmp/ are created)")
	n := fs.Int("n", 10000, "number of messages")
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
	var total, minSize, maxSize int
	for i := 0; i < *n; i++ {
		msg, date, flags := genMessage(*seed, i)
		name := fmt.Sprintf("%010d.M%dP%d.bench,S=%d:2,%s", date.Unix(), i, *seed, len(msg), flags)
		p := filepath.Join(*dir, "cur", name)
		if err := os.WriteFile(p, msg, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, date, date); err != nil {
			return err
		}
		total += len(msg)
		if i == 0 || len(msg) < minSize {
			minSize = len(msg)
		}
		maxSize = max(maxSize, len(msg))
	}
	log.Printf("gen: %d messages, %.1f MB (min %d, mean %d, max %d bytes) in %s",
		*n, float64(total)/1e6, minSize, total/max(1, *n), maxSize, *dir)
	for _, q := range append(append([]query{}, headerQueries...), bodyQueries...) {
		log.Printf("gen:   SEARCH %-28s expected %d", q, q.expected(*n))
	}
	return nil
}

// cmdHash prints "{ARGON2ID}<PHC>" for Dovecot's passdb with the argon2id
// parameters Pillarbox uses for new passwords (internal/auth/password.go:
// t=2, m=32 MiB, p=1, 16-byte salt, 32-byte key), so that a LOGIN costs
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

// common flags of run and idle.
type common struct {
	addr, tlsMode, users, password, label, pids string
	timeout                                     time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:143", "server address")
	fs.StringVar(&c.tlsMode, "tls", "starttls", "starttls or plain")
	fs.StringVar(&c.users, "users", "", "comma-separated logins, one per client")
	fs.StringVar(&c.password, "password", "", "password of every user")
	fs.StringVar(&c.label, "label", "server", "server name in the output")
	fs.StringVar(&c.pids, "pids", "", "comma-separated PIDs: the server's process tree roots, for memory")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit for one command")
}

func (c *common) parse() (dialOpts, []string, []int, error) {
	users := strings.Split(c.users, ",")
	if c.users == "" || c.password == "" {
		return dialOpts{}, nil, nil, errors.New("-users and -password are required")
	}
	var pids []int
	for _, p := range strings.Split(c.pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return dialOpts{}, nil, nil, fmt.Errorf("-pids: %w", err)
		}
		pids = append(pids, n)
	}
	return dialOpts{addr: c.addr, tls: c.tlsMode, timeout: c.timeout, password: c.password}, users, pids, nil
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var cm common
	cm.register(fs)
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
	rc.dial, rc.users, rc.pids, err = cm.parse()
	if err != nil {
		return err
	}
	rc.label = cm.label
	return rc.run()
}

func cmdIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var cm common
	cm.register(fs)
	ic := idleConfig{out: os.Stdout}
	fs.IntVar(&ic.n, "n", 10000, "connections")
	fs.IntVar(&ic.openers, "openers", 32, "connections being set up at once")
	fs.DurationVar(&ic.hold, "hold", 10*time.Second, "how long to hold them all in IDLE while sampling memory")
	_ = fs.Parse(args)
	var err error
	ic.dial, ic.users, ic.pids, err = cm.parse()
	if err != nil {
		return err
	}
	ic.dial.bufSize = 4096
	ic.label = cm.label
	return ic.run()
}
