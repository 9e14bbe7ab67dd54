package imapserver

import (
	"errors"
	"net"
	"strings"
	"time"

	"pillarbox/internal/imap"
)

type lineResult struct {
	line string
	err  error
}

// cmdIdle: RFC 2177, RFC 9051 6.3.13. Changes to the selected mailbox
// are sent as they happen (expunges included). A second goroutine reads
// the client's DONE; the session goroutine waits for it, the feed and
// shutdown. Entering IDLE re-arms the autologout timer, which then runs
// from the last byte the client sent.
func cmdIdle(s *session, c *imap.Command) error {
	if err := wantArgs(c, 0, 0); err != nil {
		return err
	}
	s.w.Raw("+ idling").CRLF()
	if err := s.idlePush(); err != nil {
		return err
	}
	lines := make(chan lineResult, 1)
	s.setIdleRead(true)
	go func() {
		line, err := s.dec.ReadLine()
		lines <- lineResult{line, err}
	}()
	for {
		select {
		case r := <-lines:
			return s.idleEnd(r)
		case <-s.feedReady():
			s.sel.poll()
			if err := s.idlePush(); err != nil {
				s.abandonIdle(lines)
				return err
			}
		case <-s.stop:
			s.abandonIdle(lines)
			return byeErr("", "Server shutting down")
		}
	}
}

// feedReady signals changes on the selected mailbox's feed; nil (never
// ready) when nothing is selected.
func (s *session) feedReady() <-chan struct{} {
	if s.sel == nil || s.sel.sub == nil {
		return nil
	}
	return s.sel.sub.Ready()
}

// idlePush sends pending mailbox updates at once.
func (s *session) idlePush() error {
	if s.sel != nil {
		if err := s.sel.flush(s, true); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		s.state = stateLogout
		return errHandled
	}
	return nil
}

// idleEnd handles the line that ends IDLE, or the read error.
func (s *session) idleEnd(r lineResult) error {
	var pe *imap.ProtocolError
	var ne net.Error
	switch {
	case r.err == nil && strings.EqualFold(strings.TrimSpace(r.line), "DONE"):
		s.okText = "IDLE terminated"
		return nil
	case r.err == nil:
		return bad("", "Expected DONE") // RFC 2177: anything else ends IDLE too
	case errors.As(r.err, &pe):
		return byeErr(pe.Code, pe.Msg)
	case errors.Is(r.err, errShutdown):
		return byeErr("", "Server shutting down")
	case errors.As(r.err, &ne) && ne.Timeout():
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return byeErr("", "Server shutting down")
		}
		s.log.Info("autologout in IDLE")
		return byeErr("", "Autologout; idle for too long")
	}
	s.log.Debug("read failed in IDLE", "err", r.err)
	s.state = stateLogout
	return errHandled
}

// abandonIdle ends the DONE reader when IDLE ends for another reason:
// the session is about to close, and closing the transport stops it.
func (s *session) abandonIdle(lines <-chan lineResult) {
	s.mu.Lock()
	s.readStop = true
	_ = s.tcp.SetReadDeadline(time.Now())
	s.mu.Unlock()
	<-lines
	s.mu.Lock()
	s.readStop = false
	s.mu.Unlock()
}
