package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"pillarbox/internal/config"
	"pillarbox/internal/mailfile"
	"pillarbox/internal/store"
)

// An import commits messages in batches (store.DeliverBatch: one durable
// commit per batch, UIDs in file order). A batch closes at importBatch
// messages or importBatchBytes of spooled data, whichever comes first;
// at most importBatch more messages wait spooled meanwhile, so memory and
// open files stay bounded whatever the size of the import.
const (
	importBatch      = 64
	importBatchBytes = 16 << 20
)

type importOpts struct {
	mailbox, format string
}

func (c *cli) importCmd() *cobra.Command {
	var o importOpts
	cmd := &cobra.Command{
		Use:   "import EMAIL --format mbox|maildir PATH [--mailbox NAME]",
		Short: "Import mbox or Maildir mail into an account",
		Long: `Import mail into an account, keeping internal dates (mbox From line, Maildir
file mtime) and flags (Maildir info letters; mbox Status/X-Status fields).
Messages are streamed: memory stays bounded whatever the size of the import.
Quota is enforced. A progress bar is shown when standard error is a terminal.

PATH may be:
  a file (mbox) or a Maildir (with cur/ and new/)   into --mailbox, INBOX by default
  - (mbox only)                                     mbox from standard input
  a directory as written by export                  every <name>.mbox file, or every
                                                    Maildir below it, into mailbox <name>
Missing mailboxes are created. The server may run meanwhile. Messages keep
their order (UIDs follow the file) and are committed in batches of up to 64.`,
		Example: `  pillarbox import alice@example.com --format mbox inbox.mbox
  pillarbox import alice@example.com --format maildir ~/Maildir/.Sent --mailbox Sent
  pillarbox import alice@example.com --format maildir /backup/alice`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(o.format); err != nil {
				return err
			}
			email, err := canonicalEmail(args[0])
			if err != nil {
				return err
			}
			sources, err := importSources(args[1], o)
			if err != nil {
				return err
			}
			return c.withStore(func(st store.Store, _ *config.Config) error {
				acc, err := st.Account(cmd.Context(), email)
				if err != nil {
					return notFound(err, "account "+email)
				}
				return c.runImport(cmd.Context(), st, acc, sources)
			})
		},
	}
	cmd.Flags().StringVar(&o.mailbox, "mailbox", "", "target mailbox for a single mbox file or Maildir (default INBOX)")
	cmd.Flags().StringVar(&o.format, "format", "", "mbox or maildir (required)")
	return cmd
}

// source is one mbox file or Maildir and the mailbox it goes to.
type source struct {
	path, mailbox, format string
}

// importSources works out what PATH holds.
func importSources(path string, o importOpts) ([]source, error) {
	single := o.mailbox
	if single == "" {
		single = "INBOX"
	}
	if path == "-" {
		if o.format != formatMbox {
			return nil, errors.New("standard input (-) works with --format mbox only")
		}
		return []source{{path, single, o.format}}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	isMaildir := func(p string) bool {
		st, err := os.Stat(filepath.Join(p, "cur"))
		return err == nil && st.IsDir()
	}
	if (o.format == formatMbox && !fi.IsDir()) || (o.format == formatMaildir && isMaildir(path)) {
		return []source{{path, single, o.format}}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a Maildir (no cur/ directory)", path)
	}
	if o.mailbox != "" {
		return nil, errors.New("--mailbox needs a single mbox file or Maildir, not a directory of them")
	}
	var out []source
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		switch {
		case o.format == formatMbox && !d.IsDir() && strings.HasSuffix(p, ".mbox"):
			out = append(out, source{p, filepath.ToSlash(strings.TrimSuffix(rel, ".mbox")), o.format})
		case o.format == formatMaildir && d.IsDir() && rel != "." && isMaildir(p):
			out = append(out, source{p, filepath.ToSlash(rel), o.format})
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no %s found in %s", o.format, path)
	}
	return out, err
}

// reader is what mbox and Maildir readers share.
type reader interface {
	Next() (*mailfile.Message, error)
}

// job is one message spooled and waiting to be stored.
type job struct {
	f       *os.File
	size    int64
	date    time.Time
	flags   []string
	mailbox string
}

// progress is a progress bar that may be absent.
type progress struct{ bar *progressbar.ProgressBar }

func (p progress) add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

// runImport streams every source into the account: the reading goroutine
// spools one message at a time into a store spool file; one committer
// takes the spooled messages in order and stores them in batches.
func (c *cli) runImport(ctx context.Context, st store.Store, acc store.Account, sources []source) error {
	sp, ok := st.(store.Spooler)
	if !ok {
		return errors.New("store cannot spool")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, importBatch)
	count := 0
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for batch := nextBatch(jobs); len(batch) > 0; batch = nextBatch(jobs) {
			if err := deliverBatch(ctx, st, acc, batch, &count); err != nil {
				cancel(err)
				continue // drain: the reader stops at the cancellation
			}
			count += len(batch)
		}
	}()
	prog := c.newProgress(sources)
	var readErr error
	for _, s := range sources {
		if readErr = c.readSource(ctx, sp, s, prog, jobs); readErr != nil {
			break
		}
	}
	close(jobs)
	<-committed
	if prog.bar != nil {
		prog.bar.Finish()
		fmt.Fprintln(c.stderr)
	}
	err := context.Cause(ctx)
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		err = readErr
	}
	if err != nil {
		return fmt.Errorf("import stopped after %d messages: %w", count, err)
	}
	c.out("imported %d messages into %s\n", count, acc.Email)
	return nil
}

// nextBatch waits for one job, then takes the jobs already waiting, up to
// importBatch messages or importBatchBytes. It returns nil when jobs is
// closed and empty.
func nextBatch(jobs <-chan job) []job {
	j, ok := <-jobs
	if !ok {
		return nil
	}
	batch, size := []job{j}, j.size
	for len(batch) < importBatch && size < importBatchBytes {
		select {
		case j, ok := <-jobs:
			if !ok {
				return batch
			}
			batch, size = append(batch, j), size+j.size
		default:
			return batch
		}
	}
	return batch
}

// deliverBatch stores spooled messages in order, in one commit, and
// removes their spool files.
// *stored is increased by the messages stored when the batch as a whole
// failed (over quota) but some of it fit.
func deliverBatch(ctx context.Context, st store.Store, acc store.Account, batch []job, stored *int) error {
	defer func() {
		for _, j := range batch {
			j.f.Close()
			os.Remove(j.f.Name()) // no-op when the store adopted the file
		}
	}()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ds := make([]*store.Delivery, len(batch))
	for i, j := range batch {
		ds[i] = &store.Delivery{
			Blob:         j.f,
			InternalDate: j.date,
			Local: []store.LocalRecipient{{
				AccountID: acc.ID, Mailbox: j.mailbox, Flags: j.flags, CheckQuota: true,
			}},
		}
	}
	_, err := st.DeliverBatch(ctx, ds)
	if errors.Is(err, store.ErrOverQuota) && len(ds) > 1 {
		// Store what fits, in order, up to the message over quota (the
		// failed batch stored nothing; its spool files are still here).
		for i, d := range ds {
			if _, err = batch[i].f.Seek(0, io.SeekStart); err == nil {
				_, err = st.Deliver(ctx, d)
			}
			if err != nil {
				*stored += i
				break
			}
		}
	}
	if errors.Is(err, store.ErrOverQuota) {
		return fmt.Errorf("account %s is over quota", acc.Email)
	}
	return err
}

// newProgress returns a bar over bytes (mbox) or messages (Maildir) when
// standard error is a terminal.
func (c *cli) newProgress(sources []source) progress {
	if !c.stderrIsTerminal {
		return progress{}
	}
	var total int64
	for _, s := range sources {
		switch {
		case s.path == "-":
			total = -1
		case s.format == formatMbox:
			if fi, err := os.Stat(s.path); err == nil && total >= 0 {
				total += fi.Size()
			}
		default:
			if r, err := mailfile.OpenMaildir(s.path); err == nil {
				total += int64(r.Len())
				r.Close()
			}
		}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(c.stderr), progressbar.OptionSetDescription("importing"),
		progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
	}
	if len(sources) > 0 && sources[0].format == formatMbox {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return progress{progressbar.NewOptions64(total, opts...)}
}

// readSource spools the messages of one source and queues them.
func (c *cli) readSource(ctx context.Context, sp store.Spooler, s source, prog progress, jobs chan<- job) error {
	var r reader
	switch {
	case s.format == formatMaildir:
		mr, err := mailfile.OpenMaildir(s.path)
		if err != nil {
			return err
		}
		defer mr.Close()
		r = maildirProgress{mr, prog}
	default:
		var in io.Reader = c.stdin
		if s.path != "-" {
			f, err := os.Open(s.path)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		r = mailfile.NewMboxReader(countingReader{in, prog})
	}
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		f, n, err := spool(sp, m.Body)
		if err != nil {
			return err
		}
		date := m.Date
		if date.IsZero() {
			date = time.Now()
		}
		select {
		case jobs <- job{f: f, size: n, date: date, flags: m.Flags, mailbox: s.mailbox}:
		case <-ctx.Done():
			f.Close()
			os.Remove(f.Name())
			return ctx.Err()
		}
	}
}

// spool copies body into a new spool file, positioned at its start, and
// returns its size.
func spool(sp store.Spooler, body io.Reader) (*os.File, int64, error) {
	f, err := sp.CreateSpool()
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

// countingReader advances the progress bar by the bytes read.
type countingReader struct {
	r    io.Reader
	prog progress
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.prog.add(int64(n))
	return n, err
}

// maildirProgress advances the progress bar by one per message.
type maildirProgress struct {
	r    *mailfile.MaildirReader
	prog progress
}

func (m maildirProgress) Next() (*mailfile.Message, error) {
	msg, err := m.r.Next()
	if err == nil {
		m.prog.add(1)
	}
	return msg, err
}
