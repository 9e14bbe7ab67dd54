package imapserver

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// selectInbox selects INBOX and reads up to the tagged OK.
func (c *client) selectInbox() []string {
	c.t.Helper()
	c.send("S1 SELECT INBOX\r\n")
	return c.until("S1 OK")
}

func TestShutdown(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	waiting := env.dial()
	waiting.login(alice)
	idling := env.dial()
	idling.login(alice)
	idling.selectInbox()
	idling.send("I1 IDLE\r\n")
	idling.expect("+ idling")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- env.srv.Shutdown(ctx) }()
	waiting.expect("* BYE Server shutting down")
	idling.expect("* BYE Server shutting down")
	for _, c := range []*client{waiting, idling} {
		if l, err := c.line(); !isClosed(err) {
			t.Errorf("after BYE: %q, %v; want the connection closed", l, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", env.addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

func TestShutdownWaitsForCommand(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	env := newEnv(t, envConfig{plaintext: true, setup: func(s *Server) {
		s.cmds["SLOW"] = command{states: inAny, run: func(*session, *imap.Command) error {
			close(entered)
			<-release
			return nil
		}}
	}})
	c := env.dial()
	c.expect("* OK")
	c.send("a1 SLOW\r\n")
	<-entered
	done := make(chan error, 1)
	go func() { done <- env.srv.Shutdown(context.Background()) }()
	close(release)
	c.expect("a1 OK SLOW completed")
	c.expect("* BYE Server shutting down")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAutologoutAndCommandTimeout(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true, opts: Options{AutoLogout: 50 * time.Millisecond, CommandTimeout: 50 * time.Millisecond}})
	idle := env.dial()
	idle.expect("* OK")
	idle.expect("* BYE Autologout; idle for too long")
	half := env.dial()
	half.expect("* OK")
	half.send("a1 LOGIN alice")
	half.expect("* BYE Command timed out")
	inIdle := env.dial()
	inIdle.login(alice)
	inIdle.send("I1 IDLE\r\n")
	inIdle.expect("+ idling")
	inIdle.expect("* BYE Autologout; idle for too long")
}

func TestPanicEndsOnlyThatConnection(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true, setup: func(s *Server) {
		s.cmds["BOOM"] = command{states: inAny, run: func(*session, *imap.Command) error { panic("boom") }}
	}})
	c := env.dial()
	c.expect("* OK")
	c.send("a1 BOOM\r\n")
	c.expect("* BYE Internal error")
	if _, err := c.line(); !isClosed(err) {
		t.Errorf("connection not closed after panic: %v", err)
	}
	c2 := env.dial()
	c2.login(alice)
	if !strings.Contains(env.logs.String(), "panic=boom") {
		t.Errorf("panic not logged")
	}
	env.logs.Reset() // the ERROR line is expected
}

// A session whose feed fell behind re-reads the mailbox and reports the
// difference.
func TestFeedFellBehind(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	c := env.dial()
	c.login(alice)
	c.selectInbox()
	ds := make([]*store.Delivery, 1100)
	for i := range ds {
		ds[i] = &store.Delivery{Blob: strings.NewReader("Subject: x\r\n\r\nx\r\n"), InternalDate: fixedNow,
			Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: "INBOX"}}}
	}
	if _, err := env.st.DeliverBatch(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	c.send("a1 NOOP\r\n")
	c.expect("* 1100 EXISTS")
	c.expect("a1 OK")
	env.deliver(env.alice, "INBOX", nil, "")
	c.send("a2 NOOP\r\n")
	c.expect("* 1101 EXISTS") // subscribed again
	c.expect("a2 OK")
}

// Deleting the selected mailbox from elsewhere ends the session; deleting
// it in the session itself deselects it.
func TestSelectedMailboxDeleted(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	if _, err := env.st.CreateMailbox(context.Background(), env.alice.ID, "Gone", ""); err != nil {
		t.Fatal(err)
	}
	c := env.dial()
	c.login(alice)
	c.send("a1 SELECT Gone\r\n")
	c.until("a1 OK")
	if err := env.st.DeleteMailbox(context.Background(), env.mailbox(env.alice, "Gone").ID); err != nil {
		t.Fatal(err)
	}
	c.send("a2 NOOP\r\n")
	c.expect("* BYE Selected mailbox was deleted")

	if _, err := env.st.CreateMailbox(context.Background(), env.alice.ID, "Gone2", ""); err != nil {
		t.Fatal(err)
	}
	c = env.dial()
	c.login(alice)
	c.send("a1 SELECT Gone2\r\n")
	c.until("a1 OK")
	c.send("a2 DELETE Gone2\r\n")
	c.expect("a2 OK DELETE completed")
	c.send("a3 CLOSE\r\n")
	c.expect("a3 BAD CLOSE is not valid in this state")
}

func TestSetLimits(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	old := env.dial()
	old.login(alice)
	env.srv.SetLimits(Limits{MaxLiteral: 1234, MaxErrors: 1})
	if got := env.srv.Limits(); got.MaxLiteral != 1234 || got.MaxLine != DefaultMaxLine {
		t.Errorf("Limits() = %+v", got)
	}
	c := env.dial()
	c.expect("* OK")
	c.send("a1 LOGIN alice@example.test \"correct horse\"\r\n")
	if l := c.expect("a1 OK [CAPABILITY"); !strings.Contains(l, "APPENDLIMIT="+strconv.Itoa(1234)) {
		t.Errorf("new limit not advertised: %q", l)
	}
	old.send("a2 FOO\r\n")
	old.expect("a2 BAD")
	old.send("a3 NOOP\r\n")
	old.expect("a3 OK") // the old session keeps MaxErrors 10
}

func TestServeErrors(t *testing.T) {
	s := New(Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve without a store: %v", err)
	}
	env := newEnv(t, envConfig{})
	if err := env.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}
