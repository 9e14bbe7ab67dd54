package pop3server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"pillarbox/internal/store"
)

// message is one message of a maildrop as the session numbers it.
type message struct {
	mailbox int64
	uid     uint32
	size    int64
	uidl    string
	deleted bool // marked by DELE
}

// maildrop is the session's fixed view of the account's maildrop (RFC
// 1939 7: numbers do not change during a session; mail arriving later
// shows in the next session).
type maildrop struct {
	msgs  []message
	count int   // messages not marked deleted
	size  int64 // their octets
}

// maildropNames returns the mailbox names the account's POP3 sessions serve.
func (s *session) maildropNames() []string {
	if len(s.account.POP3Maildrop) > 0 {
		return s.account.POP3Maildrop
	}
	return s.lim.Maildrop
}

// openMaildrop lists the messages of every mailbox of the maildrop that
// exists, in maildrop order then UID order; in DeleteHide mode messages
// carrying HiddenKeyword are left out.
func (s *session) openMaildrop() (*maildrop, error) {
	st := s.srv.opts.Store
	d := &maildrop{}
	seen := make(map[int64]bool)
	for _, name := range s.maildropNames() {
		mb, err := st.Mailbox(s.ctx, s.account.ID, name)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("mailbox %q: %w", name, err)
		}
		if seen[mb.ID] {
			continue
		}
		seen[mb.ID] = true
		msgs, err := st.Messages(s.ctx, mb.ID, 1, false)
		if err != nil {
			return nil, fmt.Errorf("messages of %q: %w", name, err)
		}
		for i := range msgs {
			m := &msgs[i]
			if s.lim.Delete == DeleteHide && hidden(m.Flags) {
				continue
			}
			d.msgs = append(d.msgs, message{mailbox: mb.ID, uid: m.UID, size: m.Size, uidl: m.POP3UID})
			d.size += m.Size
		}
	}
	d.count = len(d.msgs)
	return d, nil
}

func hidden(flags []string) bool {
	for _, f := range flags {
		if strings.EqualFold(f, HiddenKeyword) {
			return true
		}
	}
	return false
}

// update is the UPDATE state (RFC 1939 6): the marked messages are
// expunged in one atomic store call (IMAP sessions get the expunges from
// the change feed), or in DeleteHide mode get HiddenKeyword. It returns
// the number of messages marked.
func (s *session) update() (int, error) {
	var sets []store.ExpungeSet
	idx := make(map[int64]int)
	n := 0
	for _, m := range s.drop.msgs {
		if !m.deleted {
			continue
		}
		n++
		i, ok := idx[m.mailbox]
		if !ok {
			i = len(sets)
			idx[m.mailbox] = i
			sets = append(sets, store.ExpungeSet{MailboxID: m.mailbox})
		}
		sets[i].UIDs = append(sets[i].UIDs, m.uid)
	}
	if n == 0 {
		return 0, nil
	}
	// The client asked for the update: finish it even if the connection
	// or the server is going away meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := s.srv.opts.Store
	if s.lim.Delete == DeleteHide {
		for _, set := range sets {
			if _, _, err := st.StoreFlags(ctx, set.MailboxID, set.UIDs, store.FlagAdd, []string{HiddenKeyword}, 0); err != nil &&
				!errors.Is(err, store.ErrNotFound) {
				return n, err
			}
		}
		return n, nil
	}
	if _, err := st.ExpungeMany(ctx, sets); err != nil {
		return n, err
	}
	return n, nil
}

// send answers RETR (lines < 0) or TOP (the header and lines body lines)
// of message n: the bytes as stored, dot-stuffed (RFC 1939 3), then the
// termination line. A message expunged meanwhile gets a plain -ERR; a
// failure after the +OK line ends the session (the reply cannot be
// completed).
func (s *session) send(n int, m *message, lines int) {
	lost := s.drainFeed()
	var r store.MessageReader
	var err error
	p := s.takePrefetch(n, lost)
	switch {
	case s.removed[msgKey{m.mailbox, m.uid}]:
		if p != nil && p.r != nil {
			p.r.Close()
		}
		err = store.ErrNotFound
	case p != nil:
		r, err = p.r, p.err
	default:
		r, err = s.srv.opts.Store.OpenMessage(s.ctx, m.mailbox, m.uid)
	}
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("message removed during the session", "uid", m.uid)
		s.replyf("-ERR Message %d was removed by another session", n)
		return
	}
	if err != nil {
		s.log.Error("open message", "uid", m.uid, "err", err)
		s.replyf("-ERR [SYS/TEMP] Cannot read message %d, try again later", n)
		return
	}
	defer r.Close()
	var parts [][]byte
	if im, ok := r.(store.InMemory); ok {
		parts = im.Bytes()
	}
	switch {
	case lines >= 0:
		s.reply("+OK Top of message follows")
		err = s.writeTop(r, lines)
	case parts != nil:
		err = s.writeParts("+OK "+strconv.FormatInt(m.size, 10)+" octets\r\n", parts)
	default:
		s.replyf("+OK %d octets", m.size)
		err = s.writeStuffed(r)
	}
	if err != nil {
		s.log.Error("sending message", "uid", m.uid, "err", err)
		s.state = stateDone
		return
	}
	if parts == nil || lines >= 0 {
		s.reply(".")
	}
	if lines < 0 {
		s.startPrefetch(n + 1)
	}
}

// stuffer dot-stuffs a message as it passes (RFC 1939 3): a line that
// starts with '.' gets another '.' before it. It hands out pieces of the
// input, never copies.
type stuffer struct {
	midLine bool // the last byte seen was not a line end
	any     bool // some byte was seen
}

var dot = []byte{'.'}

// feed passes chunk to emit in pieces, with the stuffing dots between.
func (st *stuffer) feed(chunk []byte, emit func([]byte)) {
	start := 0
	for i := 0; i < len(chunk); {
		if !st.midLine && chunk[i] == '.' {
			if i > start {
				emit(chunk[start:i])
			}
			emit(dot)
			start = i
		}
		j := bytes.IndexByte(chunk[i:], '\n')
		if j < 0 {
			st.midLine = true
			break
		}
		i += j + 1
		st.midLine = false
	}
	if start < len(chunk) {
		emit(chunk[start:])
	}
	if len(chunk) > 0 {
		st.any = true
	}
}

var crlf = []byte("\r\n")

// finish ends a message that does not end with a line break with CRLF.
func (st *stuffer) finish(emit func([]byte)) {
	if st.any && st.midLine {
		emit(crlf)
	}
}

// writeParts sends the +OK line, an in-memory message and the
// termination line. On plain TCP it is one vectored write straight from
// the message's memory (after flushing earlier replies); over TLS, or
// when the client has pipelined more commands and the message fits the
// reply buffer (replies to a batch then share writes), it goes through
// the reply buffer.
func (s *session) writeParts(ok string, parts [][]byte) error {
	var st stuffer
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if s.rw != s.tcp || (s.br.Buffered() > 0 && size <= s.bw.Size()/2) {
		emit := func(b []byte) { s.bw.Write(b) }
		s.bw.WriteString(ok)
		for _, p := range parts {
			st.feed(p, emit)
		}
		st.finish(emit)
		s.bw.WriteString(".\r\n")
		return nil
	}
	if err := s.bw.Flush(); err != nil {
		return err
	}
	bufs := make(net.Buffers, 0, 8)
	bufs = append(bufs, []byte(ok))
	emit := func(b []byte) { bufs = append(bufs, b) }
	for _, p := range parts {
		st.feed(p, emit)
	}
	st.finish(emit)
	bufs = append(bufs, terminator)
	_ = s.tcp.SetWriteDeadline(time.Now().Add(s.lim.IdleTimeout))
	_, err := bufs.WriteTo(s.tcp)
	return err
}

var terminator = []byte(".\r\n")

// writeStuffed copies r to the client through a pooled buffer,
// dot-stuffed, ending with CRLF if the message does not.
func (s *session) writeStuffed(r io.Reader) error {
	bp := s.srv.bufs.Get().(*[]byte)
	defer s.srv.bufs.Put(bp)
	buf := *bp
	var st stuffer
	emit := func(b []byte) { s.bw.Write(b) }
	for {
		k, err := r.Read(buf)
		st.feed(buf[:k], emit)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	st.finish(emit)
	return nil // a failed write shows at the next flush, which ends the session
}

// writeTop copies the header, the empty line after it and the first
// lines lines of the body, dot-stuffed.
func (s *session) writeTop(r io.Reader, lines int) error {
	br := bufio.NewReaderSize(r, 16<<10)
	inHeader, body, lineStart, endsLF := true, 0, true, true
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if lineStart && inHeader && (string(frag) == "\r\n" || string(frag) == "\n") {
				inHeader = false
			} else if lineStart && !inHeader {
				if body >= lines {
					break
				}
				body++
			}
			if lineStart && frag[0] == '.' {
				s.bw.WriteByte('.')
			}
			if _, werr := s.bw.Write(frag); werr != nil {
				return werr
			}
			lineStart = frag[len(frag)-1] == '\n'
			endsLF = lineStart
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
	if !endsLF {
		s.bw.WriteString("\r\n")
	}
	return nil
}
