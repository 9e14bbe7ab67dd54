// Package loadutil holds what the bench load drivers (bench/imapload,
// bench/pop3load) share: the subcommand dispatch, the Dovecot passdb
// hash, writing the generated Maildir, the flags of the measuring
// subcommands, the client connection (greeting, STARTTLS upgrade, byte
// count) and the formatting of results. It speaks no mail protocol
// itself: each driver passes what differs (greeting prefix, upgrade
// command).
//
// On disk: WriteMessage writes DIR/cur/NAME with the file's mtime set to
// the message date; MakeMaildir creates DIR/cur, DIR/new and DIR/tmp.
package loadutil

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

// Cmd is one subcommand of a driver: its name and what runs it with the
// arguments after the name.
type Cmd struct {
	Name string
	Run  func(args []string) error
}

// Main runs the subcommand named by os.Args[1] with log lines prefixed
// by prog. A missing or unknown subcommand prints the usage and exits 2;
// a failing one logs its error and exits 1.
func Main(prog string, cmds ...Cmd) {
	log.SetFlags(log.Ltime)
	log.SetPrefix(prog + ": ")
	names := make([]string, len(cmds))
	for k, c := range cmds {
		names[k] = c.Name
	}
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: %s %s [flags] (%s CMD -h for the flags)\n", prog, strings.Join(names, "|"), prog)
		os.Exit(2)
	}
	if len(os.Args) < 2 {
		usage()
	}
	for _, c := range cmds {
		if c.Name == os.Args[1] {
			if err := c.Run(os.Args[2:]); err != nil {
				log.Fatal(err)
			}
			return
		}
	}
	usage()
}

// Gen is the "gen" subcommand: it parses -dir, -n (default n) and
// -seed, creates the Maildir (MakeMaildir) and has write fill it.
func Gen(n int, write func(dir string, n int, seed uint64) error) Cmd {
	return Cmd{Name: "gen", Run: func(args []string) error {
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		dir := fs.String("dir", "", "Maildir to write (cur/, new/, tmp/ are created)")
		count := fs.Int("n", n, "number of messages")
		seed := fs.Uint64("seed", 1, "generator seed")
		_ = fs.Parse(args)
		if err := MakeMaildir(*dir); err != nil {
			return err
		}
		return write(*dir, *count, *seed)
	}}
}

// HashCmd is the "hash" subcommand (Hash).
var HashCmd = Cmd{Name: "hash", Run: Hash}

// Hash is the "hash" subcommand: it prints "{ARGON2ID}<PHC>" for
// Dovecot's passdb with the argon2id parameters Pillarbox uses for new
// passwords (internal/auth/password.go: t=2, m=32 MiB, p=1, 16-byte
// salt, 32-byte key), so that a login costs both servers the same
// hashing work.
func Hash(args []string) error {
	fs := flag.NewFlagSet("hash", flag.ExitOnError)
	pw := fs.String("password", "", "password")
	_ = fs.Parse(args)
	if *pw == "" {
		return errors.New("hash: -password is required")
	}
	phc, err := argon2idPHC(*pw)
	if err != nil {
		return err
	}
	fmt.Println("{ARGON2ID}" + phc)
	return nil
}

func argon2idPHC(pw string) (string, error) {
	const t, m, p, keyLen = 2, 32 * 1024, 1, 32
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, t, m, p, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// MakeMaildir creates dir's cur/, new/ and tmp/ (the -dir of gen, which
// must be set).
func MakeMaildir(dir string) error {
	if dir == "" {
		return errors.New("gen: -dir is required")
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// WriteMessage writes msg as dir/cur/name with mtime and atime date.
func WriteMessage(dir, name string, msg []byte, date time.Time) error {
	p := filepath.Join(dir, "cur", name)
	if err := os.WriteFile(p, msg, 0o644); err != nil {
		return err
	}
	return os.Chtimes(p, date, date)
}

// Target is what every measuring subcommand is told about the server:
// how to reach it, the accounts (one per client), its name in the
// output and the roots of its process trees (for memory).
type Target struct {
	Dial  DialOpts
	Label string
	Users []string
	PIDs  []int
}

// Flags are the command-line form of a Target.
type Flags struct {
	addr, tls, users, password, label, pids string
	timeout                                 time.Duration
}

// Register adds -addr, -tls, -users, -password, -label, -pids and
// -timeout to fs with the driver's defaults and help texts.
func (f *Flags) Register(fs *flag.FlagSet, addr, tls, tlsHelp, usersHelp string) {
	fs.StringVar(&f.addr, "addr", addr, "server address")
	fs.StringVar(&f.tls, "tls", tls, tlsHelp)
	fs.StringVar(&f.users, "users", "", usersHelp)
	fs.StringVar(&f.password, "password", "", "password of every user")
	fs.StringVar(&f.label, "label", "server", "server name in the output")
	fs.StringVar(&f.pids, "pids", "", "comma-separated PIDs: the server's process tree roots, for memory")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "limit for one command")
}

// Target checks the parsed flags (-users and -password are required)
// and returns the Target they describe.
func (f *Flags) Target() (Target, error) {
	if f.users == "" || f.password == "" {
		return Target{}, errors.New("-users and -password are required")
	}
	t := Target{
		Dial:  DialOpts{Addr: f.addr, TLS: f.tls, Timeout: f.timeout, Password: f.password},
		Label: f.label,
		Users: strings.Split(f.users, ","),
	}
	for _, p := range strings.Split(f.pids, ",") {
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return Target{}, fmt.Errorf("-pids: %w", err)
		}
		t.PIDs = append(t.PIDs, n)
	}
	return t, nil
}
