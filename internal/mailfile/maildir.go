package mailfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maildirFlags maps Maildir info letters to IMAP flags, in the ASCII order
// the letters must be written in.
var maildirFlags = []struct {
	c    byte
	flag string
}{
	{'D', FlagDraft}, {'F', FlagFlagged}, {'R', FlagAnswered}, {'S', FlagSeen}, {'T', FlagDeleted},
}

// MaildirReader reads the messages of a Maildir (cur/ and new/), in file
// name order (names start with the delivery time).
type MaildirReader struct {
	dir      string
	names    []string // "cur/x:2,S", "new/y"
	i        int
	keywords map[byte]string // Dovecot keyword letters
	cur      *os.File
}

// OpenMaildir lists the messages of the Maildir dir. Only file names are
// held in memory.
func OpenMaildir(dir string) (*MaildirReader, error) {
	r := &MaildirReader{dir: dir}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("mailfile: not a Maildir: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			r.names = append(r.names, sub+"/"+e.Name())
		}
	}
	slices.SortFunc(r.names, func(a, b string) int { return strings.Compare(a[4:], b[4:]) })
	kw, err := readKeywords(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil, err
	}
	r.keywords = kw
	return r, nil
}

// readKeywords reads Dovecot's keyword file: lines "<index> <keyword>",
// index 0 being letter 'a'. A missing file means no keywords.
func readKeywords(path string) (map[byte]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kw := map[byte]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		idx, name, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(idx)
		if ok && err == nil && n >= 0 && n < 26 && name != "" {
			kw[byte('a'+n)] = name
		}
	}
	return kw, sc.Err()
}

// Len is the number of messages listed.
func (r *MaildirReader) Len() int { return len(r.names) }

// Next returns the next message, or io.EOF after the last one. It closes
// the previous message's file. Files that disappeared since OpenMaildir
// (moved by a mail client) are skipped.
func (r *MaildirReader) Next() (*Message, error) {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	for r.i < len(r.names) {
		name := r.names[r.i]
		r.i++
		f, err := os.Open(filepath.Join(r.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		r.cur = f
		base := name[4:]
		return &Message{
			Body:  CRLFReader(f),
			Flags: r.flags(base),
			Date:  st.ModTime(),
			Name:  base,
		}, nil
	}
	return nil, io.EOF
}

// flags returns the IMAP flags of a file name's info suffix ":2,<letters>"
// (';' is accepted for ':' as used on some file systems).
func (r *MaildirReader) flags(name string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		i = strings.LastIndex(name, ";2,")
	}
	if i < 0 {
		return nil
	}
	var flags []string
	for _, c := range []byte(name[i+3:]) {
		for _, f := range maildirFlags {
			if f.c == c {
				flags = append(flags, f.flag)
			}
		}
		if kw, ok := r.keywords[c]; ok {
			flags = append(flags, kw)
		}
	}
	slices.Sort(flags)
	return slices.Compact(flags)
}

// Close closes the current message's file.
func (r *MaildirReader) Close() error {
	if r.cur == nil {
		return nil
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}

// MaildirOptions configures a MaildirWriter.
type MaildirOptions struct {
	Now      func() time.Time // for unique names; time.Now when nil
	Hostname string           // for unique names; os.Hostname when empty
	NoSync   bool             // skip fsync (tests and benchmarks only)
}

// MaildirWriter writes messages into a Maildir.
type MaildirWriter struct {
	dir  string
	host string
	pid  int
	now  func() time.Time
	seq  uint64
	sync bool
}

// CreateMaildir creates dir with tmp/, new/ and cur/ (mode 0700) if needed
// and returns a writer into it.
func CreateMaildir(dir string, opts MaildirOptions) (*MaildirWriter, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	w := &MaildirWriter{dir: dir, host: opts.Hostname, pid: os.Getpid(), now: opts.Now, sync: !opts.NoSync}
	if w.now == nil {
		w.now = time.Now
	}
	if w.host == "" {
		w.host, _ = os.Hostname()
	}
	// Maildir spec: '/' and ':' in the host part are written as octal escapes.
	w.host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(w.host)
	if w.host == "" {
		w.host = "localhost"
	}
	return w, nil
}

// Write stores m in cur/ with the info suffix of its flags (keywords are
// dropped) and mtime m.Date (when set), bytes unchanged. It returns the file
// name. The file is fsynced before it appears in cur/; call Close to fsync
// the directories.
func (w *MaildirWriter) Write(m *Message) (string, error) {
	for attempt := 0; ; attempt++ {
		name := w.uniqueName()
		tmp := filepath.Join(w.dir, "tmp", name)
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && attempt < 100 {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := w.fill(f, tmp, m); err != nil {
			os.Remove(tmp)
			return "", err
		}
		final := name + ":2," + infoLetters(m.Flags)
		dst := filepath.Join(w.dir, "cur", final)
		err = os.Link(tmp, dst) // fails rather than replace an existing file
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: rename (names are unique).
			if _, serr := os.Lstat(dst); errors.Is(serr, fs.ErrNotExist) {
				err = os.Rename(tmp, dst)
			}
		}
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) && attempt < 100 {
			continue
		}
		if err != nil {
			return "", err
		}
		return final, nil
	}
}

// fill writes the message into the open temporary file and closes it.
func (w *MaildirWriter) fill(f *os.File, path string, m *Message) error {
	_, err := f.ReadFrom(m.Body)
	if err == nil && w.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !m.Date.IsZero() {
		err = os.Chtimes(path, m.Date, m.Date)
	}
	return err
}

func (w *MaildirWriter) uniqueName() string {
	w.seq++
	t := w.now()
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", t.Unix(), t.Nanosecond()/1000, w.pid, w.seq, w.host)
}

// infoLetters returns the Maildir info letters for flags, in ASCII order.
func infoLetters(flags []string) string {
	var b strings.Builder
	for _, f := range maildirFlags {
		if slices.Contains(flags, f.flag) {
			b.WriteByte(f.c)
		}
	}
	return b.String()
}

// Close fsyncs cur/ and tmp/ so that every written message is durable.
func (w *MaildirWriter) Close() error {
	if !w.sync {
		return nil
	}
	for _, sub := range []string{"cur", "tmp"} {
		d, err := os.Open(filepath.Join(w.dir, sub))
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
