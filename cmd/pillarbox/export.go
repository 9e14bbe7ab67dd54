package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"pillarbox/internal/config"
	"pillarbox/internal/mailfile"
	"pillarbox/internal/store"
)

// Mail file formats of import and export.
const (
	formatMbox    = "mbox"
	formatMaildir = "maildir"
)

func checkFormat(f string) error {
	if f != formatMbox && f != formatMaildir {
		return fmt.Errorf("--format must be mbox or maildir, not %q", f)
	}
	return nil
}

type exportOpts struct {
	mailbox, format, output string
}

func (c *cli) exportCmd() *cobra.Command {
	var o exportOpts
	cmd := &cobra.Command{
		Use:   "export EMAIL --format mbox|maildir --output PATH [--mailbox NAME]",
		Short: "Export an account's mail as mbox or Maildir",
		Long: `Export an account's mail. Maildir files hold the stored bytes unchanged; mbox
uses mboxrd quoting and LF line endings. Internal dates are kept (mbox From
line, Maildir file mtime). Maildir keeps the system flags (\Seen, \Answered,
\Flagged, \Deleted, \Draft) in the file names; keywords are not exported yet,
and mbox keeps no flags (use Maildir to keep them).

Layout:
  --output -                       mbox on standard output: --mailbox, INBOX by default
  --mailbox NAME --output FILE     mbox: FILE; maildir: FILE is the Maildir
  no --mailbox, --output DIR       every mailbox: mbox DIR/<name>.mbox,
                                   maildir DIR/<name>/ (a Maildir each);
                                   hierarchical names make sub-directories

Existing output files are not overwritten. The server may run meanwhile.`,
		Example: `  pillarbox export alice@example.com --format mbox --output - > inbox.mbox
  pillarbox export alice@example.com --format maildir --output /backup/alice
  pillarbox export alice@example.com --mailbox Sent --format mbox --output sent.mbox`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(o.format); err != nil {
				return err
			}
			if o.output == "" {
				return errors.New("--output is required (- for standard output, mbox only)")
			}
			if o.output == "-" && o.format != formatMbox {
				return errors.New("--output - works with --format mbox only")
			}
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				return c.export(cmd.Context(), st, email, o)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.mailbox, "mailbox", "", "export only this mailbox (default: all; INBOX for --output -)")
	f.StringVar(&o.format, "format", "", "mbox or maildir (required)")
	f.StringVarP(&o.output, "output", "o", "", "output path, or - for standard output (mbox)")
	return cmd
}

func (c *cli) export(ctx context.Context, st store.Store, email string, o exportOpts) error {
	acc, err := st.Account(ctx, email)
	if err != nil {
		return notFound(err, "account "+email)
	}
	if o.output == "-" {
		name := o.mailbox
		if name == "" {
			name = "INBOX"
		}
		mb, err := st.Mailbox(ctx, acc.ID, name)
		if err != nil {
			return notFound(err, "mailbox "+name)
		}
		w := mailfile.NewMboxWriter(c.stdout)
		if _, err := exportMailbox(ctx, st, mb, w.Write); err != nil {
			return err
		}
		return w.Flush()
	}
	var mbs []store.Mailbox
	if o.mailbox != "" {
		mb, err := st.Mailbox(ctx, acc.ID, o.mailbox)
		if err != nil {
			return notFound(err, "mailbox "+o.mailbox)
		}
		mbs = []store.Mailbox{mb}
	} else if mbs, err = st.Mailboxes(ctx, acc.ID); err != nil {
		return err
	}
	total := 0
	for _, mb := range mbs {
		path := o.output
		if o.mailbox == "" {
			path = filepath.Join(o.output, filepath.FromSlash(safeName(mb.Name)))
			if o.format == formatMbox {
				path += ".mbox"
			}
		}
		n, err := exportTo(ctx, st, mb, o.format, path)
		if err != nil {
			return err
		}
		total += n
	}
	fmt.Fprintf(c.stderr, "exported %d messages from %d mailboxes to %s\n", total, len(mbs), o.output)
	return nil
}

// safeName keeps a mailbox name from escaping the output directory.
func safeName(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if p == "" || p == "." || p == ".." {
			parts[i] = "_" + p + "_"
		}
	}
	return strings.Join(parts, "/")
}

// exportTo writes one mailbox to path in format.
func exportTo(ctx context.Context, st store.Store, mb store.Mailbox, format, path string) (int, error) {
	if format == formatMaildir {
		if _, err := os.Stat(filepath.Join(path, "cur")); err == nil {
			return 0, fmt.Errorf("%s is already a Maildir: not overwriting", path)
		}
		w, err := mailfile.CreateMaildir(path, mailfile.MaildirOptions{})
		if err != nil {
			return 0, err
		}
		n, err := exportMailbox(ctx, st, mb, func(m *mailfile.Message) error {
			_, err := w.Write(m)
			return err
		})
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	w := mailfile.NewMboxWriter(f)
	n, err := exportMailbox(ctx, st, mb, w.Write)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// exportMailbox hands every message of mb to write, in UID order.
func exportMailbox(ctx context.Context, st store.Store, mb store.Mailbox, write func(*mailfile.Message) error) (int, error) {
	msgs, err := st.Messages(ctx, mb.ID, 1, false)
	if err != nil {
		return 0, err
	}
	for i, m := range msgs {
		r, err := st.OpenMessage(ctx, mb.ID, m.UID)
		if errors.Is(err, store.ErrNotFound) {
			continue // expunged meanwhile
		}
		if err != nil {
			return i, err
		}
		err = write(&mailfile.Message{Body: io.Reader(r), Flags: m.Flags, Date: m.InternalDate, From: returnPath(r)})
		r.Close()
		if err != nil {
			return i, fmt.Errorf("mailbox %s: %w", mb.Name, err)
		}
	}
	return len(msgs), nil
}

// returnPath returns the address of a leading "Return-Path: <addr>" line
// (as local delivery writes it), for the mbox From line; "" otherwise.
func returnPath(r io.ReaderAt) string {
	buf := make([]byte, 512)
	n, _ := r.ReadAt(buf, 0)
	line, _, ok := strings.Cut(string(buf[:n]), "\r\n")
	if !ok {
		return ""
	}
	name, val, ok := strings.Cut(line, ":")
	if !ok || !strings.EqualFold(name, "Return-Path") {
		return ""
	}
	val = strings.TrimSpace(val)
	if !strings.HasPrefix(val, "<") || !strings.HasSuffix(val, ">") {
		return ""
	}
	return val[1 : len(val)-1]
}
