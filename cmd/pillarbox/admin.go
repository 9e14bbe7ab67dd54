package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"pillarbox/internal/addr"
	"pillarbox/internal/auth"
	"pillarbox/internal/config"
	"pillarbox/internal/store"
)

func (c *cli) domainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Manage the domains Pillarbox receives mail for",
		Example: `  pillarbox domain add example.com
  pillarbox domain list
  pillarbox domain remove example.com`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "add DOMAIN",
		Short: "Receive mail for DOMAIN",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := addr.ParseDomain(args[0])
			if err != nil {
				return fmt.Errorf("bad domain %q: %w", args[0], err)
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := st.AddDomain(cmd.Context(), d); err != nil {
					return exists(err, "domain "+d)
				}
				c.out("added domain %s\n", d)
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List local domains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				ds, err := st.Domains(cmd.Context())
				if err != nil {
					return err
				}
				for _, d := range ds {
					c.out("%s\n", d.Name)
				}
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "remove DOMAIN",
		Short: "Stop receiving mail for DOMAIN (it must have no accounts or aliases)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := addr.ParseDomain(args[0])
			if err != nil {
				return fmt.Errorf("bad domain %q: %w", args[0], err)
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := st.RemoveDomain(cmd.Context(), d); err != nil {
					if errors.Is(err, store.ErrNotEmpty) {
						return fmt.Errorf("domain %s still has accounts or aliases: remove them first", d)
					}
					return notFound(err, "domain "+d)
				}
				c.out("removed domain %s\n", d)
				return nil
			})
		},
	})
	return cmd
}

// exists turns store.ErrExists into a readable error.
func exists(err error, what string) error {
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s already exists", what)
	}
	return err
}

// notFound turns store.ErrNotFound into a readable error.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s not found", what)
	}
	return err
}

// canonicalEmail parses and canonicalises an account address.
func canonicalEmail(s string) (string, error) {
	a, err := addr.Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad address %q: %w", s, err)
	}
	return a.Canonical().String(), nil
}

func (c *cli) accountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Manage mail accounts",
		Long: `Manage mail accounts. An account's domain must exist (pillarbox domain add).
Every account gets the mailboxes INBOX, Sent, Drafts, Trash, Junk and Archive.
Passwords are stored as argon2id hashes (plus SCRAM-SHA-256 keys), never in clear.`,
		Example: `  pillarbox account add alice@example.com                 # prints a generated password
  printf '%s' "$PW" | pillarbox account add bob@example.com --password-stdin --quota 2GiB
  pillarbox account list
  pillarbox account passwd alice@example.com --password-stdin < pw.txt
  pillarbox account set alice@example.com --quota 0 --save-sent=false
  pillarbox account set alice@example.com --pop3-maildrop INBOX,Junk   # --pop3-maildrop "" = default
  pillarbox account remove bob@example.com`,
	}
	cmd.AddCommand(c.accountAddCmd(), c.accountListCmd(), c.accountRemoveCmd(),
		c.accountPasswdCmd(), c.accountSetCmd())
	return cmd
}

// maxPasswordInput bounds the password line read from standard input.
const maxPasswordInput = 1024

// readPassword reads a password from stdin: the first line, without its
// line ending (it returns at the newline, so a terminal needs no Ctrl-D).
func (c *cli) readPassword() (string, error) {
	r := bufio.NewReaderSize(io.LimitReader(c.stdin, maxPasswordInput+2), maxPasswordInput+2)
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if !strings.HasSuffix(line, "\n") && len(line) > maxPasswordInput {
		return "", fmt.Errorf("password on standard input longer than %d bytes", maxPasswordInput)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if len(pw) > maxPasswordInput {
		return "", fmt.Errorf("password on standard input longer than %d bytes", maxPasswordInput)
	}
	if pw == "" {
		return "", errors.New("empty password on standard input")
	}
	return pw, nil
}

// passwordAlphabet has no look-alike characters (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// generatePassword returns a 20-character random password (~117 bits).
func (c *cli) generatePassword() (string, error) {
	const n = 20
	out := make([]byte, 0, n)
	buf := make([]byte, 32)
	for len(out) < n {
		if _, err := io.ReadFull(c.rand, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			// Rejection sampling keeps the distribution uniform.
			if int(b) < 256-256%len(passwordAlphabet) && len(out) < n {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}

func (c *cli) accountAddCmd() *cobra.Command {
	var pwStdin bool
	var quota string
	cmd := &cobra.Command{
		Use:   "add EMAIL",
		Short: "Create an account (prints a generated password unless --password-stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			q, err := parseQuota(quota)
			if err != nil {
				return err
			}
			pw, generated := "", false
			if pwStdin {
				pw, err = c.readPassword()
			} else {
				pw, err = c.generatePassword()
				generated = true
			}
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, cfg *config.Config) error {
				if _, err := c.createAccount(cmd.Context(), st, cfg, email, pw, q); err != nil {
					return err
				}
				c.out("created account %s\n", email)
				if generated {
					c.out("password: %s\n(shown once; change it with `pillarbox account passwd %s --password-stdin`)\n", pw, email)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input (first line)")
	cmd.Flags().StringVar(&quota, "quota", "0", `storage quota, e.g. "2GiB", "500MB", bytes; 0 = unlimited`)
	return cmd
}

// createAccount hashes pw and creates the account, applying the config's
// submission.save_sent default.
func (c *cli) createAccount(ctx context.Context, st store.Store, cfg *config.Config, email, pw string, quota int64) (store.Account, error) {
	if _, err := st.Domain(ctx, domainOf(email)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Account{}, fmt.Errorf("domain %s is not local: run `pillarbox domain add %s` first", domainOf(email), domainOf(email))
		}
		return store.Account{}, err
	}
	cred, err := auth.HashPassword(pw)
	if err != nil {
		return store.Account{}, err
	}
	acc, err := st.CreateAccount(ctx, email, cred, quota)
	if err != nil {
		return store.Account{}, exists(err, "account "+email)
	}
	if cfg.Submission.SaveSent {
		if err := st.SetSaveSent(ctx, acc.ID, true); err != nil {
			return acc, err
		}
		acc.SaveSent = true
	}
	return acc, nil
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}

func (c *cli) accountListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List accounts with quota, used storage, save-sent and POP3 maildrop",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withStore(func(st store.Store, _ *config.Config) error {
				accs, err := st.Accounts(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EMAIL\tQUOTA\tUSED\tSAVE-SENT\tPOP3-MAILDROP")
				for _, a := range accs {
					q := "unlimited"
					if a.QuotaBytes > 0 {
						q = formatSize(a.QuotaBytes)
					}
					md := "default"
					if a.POP3Maildrop != nil {
						md = strings.Join(a.POP3Maildrop, ",")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", a.Email, q, formatSize(a.UsedBytes), a.SaveSent, md)
				}
				return tw.Flush()
			})
		},
	}
}

func (c *cli) accountRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove EMAIL",
		Short: "Delete an account with all its mailboxes and messages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := st.DeleteAccount(cmd.Context(), email); err != nil {
					return notFound(err, "account "+email)
				}
				c.out("removed account %s\n", email)
				return nil
			})
		},
	}
}

func (c *cli) accountPasswdCmd() *cobra.Command {
	var pwStdin bool
	cmd := &cobra.Command{
		Use:     "passwd EMAIL --password-stdin",
		Short:   "Set an account's password (read from standard input)",
		Example: `  printf '%s\n' "$NEWPW" | pillarbox account passwd alice@example.com --password-stdin`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !pwStdin {
				return errors.New("give the new password on standard input with --password-stdin")
			}
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			pw, err := c.readPassword()
			if err != nil {
				return err
			}
			cred, err := auth.HashPassword(pw)
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				acc, err := st.Account(cmd.Context(), email)
				if err != nil {
					return notFound(err, "account "+email)
				}
				if err := st.SetCredentials(cmd.Context(), acc.ID, cred); err != nil {
					return err
				}
				c.out("password changed for %s\n", email)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from standard input (first line)")
	return cmd
}

// accountSettings are the changes asked of `account set`; nil fields
// stay as they are.
type accountSettings struct {
	quota       *int64
	saveSent    *bool
	maildrop    *[]string // points at nil: back to the default
	maildropArg string    // as given, for error messages
}

func (c *cli) accountSetCmd() *cobra.Command {
	var quota, maildrop string
	var saveSent bool
	cmd := &cobra.Command{
		Use:   "set EMAIL [--quota SIZE] [--save-sent=true|false] [--pop3-maildrop MAILBOX,...]",
		Short: "Change an account's quota, copy-to-Sent setting or POP3 maildrop",
		Long: `Change an account's quota, copy-to-Sent setting or POP3 maildrop.
--pop3-maildrop names the mailboxes POP3 serves for the account, in order, comma-separated
(they need not exist yet); "" goes back to the server's default ([pop3] maildrop).`,
		Example: `  pillarbox account set alice@example.com --quota 2GiB --save-sent
  pillarbox account set alice@example.com --pop3-maildrop INBOX,Junk
  pillarbox account set alice@example.com --pop3-maildrop ""`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if !f.Changed("quota") && !f.Changed("save-sent") && !f.Changed("pop3-maildrop") {
				return errors.New("nothing to change: give --quota, --save-sent and/or --pop3-maildrop")
			}
			var set accountSettings
			if f.Changed("quota") {
				q, err := parseQuota(quota)
				if err != nil {
					return err
				}
				set.quota = &q
			}
			if f.Changed("save-sent") {
				set.saveSent = &saveSent
			}
			if f.Changed("pop3-maildrop") {
				md, err := parseMaildrop(maildrop)
				if err != nil {
					return err
				}
				set.maildrop, set.maildropArg = &md, maildrop
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				if err := set.apply(cmd.Context(), st, email); err != nil {
					return err
				}
				c.out("updated account %s\n", email)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&quota, "quota", "0", `storage quota, e.g. "2GiB"; 0 = unlimited`)
	cmd.Flags().BoolVar(&saveSent, "save-sent", false, "copy mail submitted by this account into its Sent mailbox")
	cmd.Flags().StringVar(&maildrop, "pop3-maildrop", "", `mailboxes POP3 serves, in order, e.g. "INBOX,Junk"; "" = the server's default`)
	return cmd
}

// apply writes the settings of the account email. The maildrop goes
// first: the store may refuse a name, and then nothing has changed.
func (set *accountSettings) apply(ctx context.Context, st store.Store, email string) error {
	acc, err := st.Account(ctx, email)
	if err != nil {
		return notFound(err, "account "+email)
	}
	if set.maildrop != nil {
		if err := st.SetPOP3Maildrop(ctx, acc.ID, *set.maildrop); err != nil {
			if errors.Is(err, store.ErrInvalidName) {
				return fmt.Errorf("--pop3-maildrop: invalid mailbox name in %q", set.maildropArg)
			}
			return err
		}
	}
	if set.quota != nil {
		if err := st.SetQuota(ctx, acc.ID, *set.quota); err != nil {
			return err
		}
	}
	if set.saveSent != nil {
		if err := st.SetSaveSent(ctx, acc.ID, *set.saveSent); err != nil {
			return err
		}
	}
	return nil
}

// parseMaildrop splits a --pop3-maildrop value: comma-separated mailbox
// names, spaces around each trimmed; "" (or only spaces) means the
// server's default (nil).
func parseMaildrop(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("--pop3-maildrop: empty mailbox name in %q", s)
		}
		out = append(out, name)
	}
	return out, nil
}

// formatSize prints a byte count with a binary unit.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f%s", v, []string{"KiB", "MiB", "GiB", "TiB"}[i])
}

// parseQuota parses a --quota value ("2GiB", "500MB", bytes; 0 = unlimited).
func parseQuota(s string) (int64, error) {
	n, err := config.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("--quota: %w", err)
	}
	return int64(n), nil
}
