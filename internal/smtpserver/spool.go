package smtpserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// spoolMemory is how much of a message is held in memory before it goes
// to a file from Backend.CreateSpool. Most mail is smaller, so most
// messages never create a file here (creating a file costs more CPU than
// receiving a small message); larger ones are written to the file as they
// arrive, so a session holds at most this much message memory.
const spoolMemory = 128 << 10

// spool collects one message: in memory up to limit bytes, then in a file.
type spool struct {
	create func() (*os.File, error)
	limit  int
	buf    []byte
	f      *os.File
	bw     *bufio.Writer
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil {
		if len(s.buf)+len(p) <= s.limit {
			s.buf = append(s.buf, p...)
			return len(p), nil
		}
		f, err := s.create()
		if err != nil {
			return 0, err
		}
		s.f, s.bw = f, bufio.NewWriterSize(f, 32<<10)
		if _, err := s.bw.Write(s.buf); err != nil {
			return 0, err
		}
		s.buf = nil
	}
	return s.bw.Write(p)
}

// reader returns the whole message from its start: a *bytes.Reader, or
// the spool *os.File (which a backend may adopt).
func (s *spool) reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.buf), nil
	}
	if err := s.bw.Flush(); err != nil {
		return nil, err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

// discard closes and removes the spool file, if any.
func (s *spool) discard(log *slog.Logger) {
	s.buf = nil
	if s.f == nil {
		return
	}
	name := s.f.Name()
	if err := s.f.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
		log.Warn("close spool", "err", err)
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove spool", "err", err)
	}
}
