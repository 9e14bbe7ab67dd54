package imapserver

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"pillarbox/internal/store"
)

// Tests with go-imap v2's imapclient: an independent implementation.

// events collects unilateral data a client receives.
type events struct {
	mu       sync.Mutex
	exists   []uint32
	expunged []uint32
	fetched  []uint32
	ch       chan string
}

func newEvents() *events { return &events{ch: make(chan string, 100)} }

func (e *events) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				e.mu.Lock()
				e.exists = append(e.exists, *d.NumMessages)
				e.mu.Unlock()
				e.ch <- "exists"
			}
		},
		Expunge: func(seq uint32) {
			e.mu.Lock()
			e.expunged = append(e.expunged, seq)
			e.mu.Unlock()
			e.ch <- "expunge"
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			e.mu.Lock()
			e.fetched = append(e.fetched, m.SeqNum)
			e.mu.Unlock()
			for m.Next() != nil { // drain the items
			}
			e.ch <- "fetch"
		},
	}
}

// wait returns the next event kind, failing after a generous time.
func (e *events) wait(t *testing.T) string {
	t.Helper()
	select {
	case k := <-e.ch:
		return k
	case <-time.After(20 * time.Second):
		t.Fatal("no unilateral data arrived")
		return ""
	}
}

func TestClientStartTLSListStatusSelectIdle(t *testing.T) {
	env := newEnv(t, envConfig{tls: true})
	env.deliver(env.alice, "INBOX", []string{`\Seen`}, "")
	ev := newEvents()
	c, err := imapclient.DialStartTLS(env.addr, &imapclient.Options{TLSConfig: env.clientTLS(), UnilateralDataHandler: ev.handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if caps := c.Caps(); !caps.Has("AUTH=PLAIN") || caps.Has("LOGINDISABLED") {
		t.Errorf("caps after STARTTLS: %v", caps)
	}
	if err := c.Login(alice, password).Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIMAP4rev2, imap.CapIdle, imap.CapCondStore, imap.CapListStatus, "APPENDLIMIT=52428800"} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing: %v", want, caps)
		}
	}
	if err := c.Create("Work/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, NumUnseen: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
		if l.Mailbox == "INBOX" && (l.Status == nil || *l.Status.NumMessages != 1 || *l.Status.NumUnseen != 0) {
			t.Errorf("INBOX status %+v", l.Status)
		}
		if l.Mailbox == "Sent" && !slices.Contains(l.Attrs, imap.MailboxAttrSent) {
			t.Errorf("Sent attributes %v", l.Attrs)
		}
	}
	if want := []string{"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2026"}; !slices.Equal(names, want) {
		t.Errorf("LIST names %q, want %q", names, want)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, Size: true, HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 || st.UIDNext != 2 || *st.Size == 0 || st.HighestModSeq == 0 {
		t.Errorf("STATUS %+v", st)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 || sel.UIDNext != 2 || sel.UIDValidity == 0 {
		t.Errorf("SELECT %+v", sel)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	env.deliver(env.alice, "INBOX", nil, "")
	if k := ev.wait(t); k != "exists" {
		t.Fatalf("got %s during IDLE, want exists", k)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	if !slices.Equal(ev.exists, []uint32{2}) {
		t.Errorf("EXISTS seen %v, want [2]", ev.exists)
	}
	ev.mu.Unlock()
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// Two sessions on one mailbox: one in IDLE sees changes made elsewhere at
// once, the other at its next NOOP, with the right sequence numbers.
func TestClientTwoSessions(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{ImplicitTLS: true}})
	for range 3 {
		env.deliver(env.alice, "INBOX", nil, "")
	}
	dial := func(ev *events) *imapclient.Client {
		c, err := imapclient.DialTLS(env.addr, &imapclient.Options{TLSConfig: env.clientTLS(), UnilateralDataHandler: ev.handler()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Authenticate(sasl.NewPlainClient("", alice, password)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ev1, ev2 := newEvents(), newEvents()
	c1, c2 := dial(ev1), dial(ev2)
	idle, err := c2.Idle()
	if err != nil {
		t.Fatal(err)
	}
	mb := env.mailbox(env.alice, "INBOX")
	ctx := t.Context()
	if _, _, err := env.st.StoreFlags(ctx, mb.ID, []uint32{2}, store.FlagAdd, []string{`\Flagged`}, 0); err != nil {
		t.Fatal(err)
	}
	if k := ev2.wait(t); k != "fetch" {
		t.Fatalf("IDLE got %s, want fetch", k)
	}
	if _, err := env.st.Expunge(ctx, mb.ID, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if k := ev2.wait(t); k != "expunge" {
		t.Fatalf("IDLE got %s, want expunge", k)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	got := []string{ev1.wait(t), ev1.wait(t)} // the FETCH handler runs in its own goroutine
	slices.Sort(got)
	if !slices.Equal(got, []string{"expunge", "fetch"}) {
		t.Errorf("NOOP brought %v", got)
	}
	// Session 2 saw the flag change before the expunge, session 1 after it.
	for i, ev := range []*events{ev1, ev2} {
		ev.mu.Lock()
		if wantSeq := uint32(1 + i); !slices.Equal(ev.fetched, []uint32{wantSeq}) || !slices.Equal(ev.expunged, []uint32{1}) {
			t.Errorf("session %d: fetched %v expunged %v, want [%d] [1]", i+1, ev.fetched, ev.expunged, wantSeq)
		}
		ev.mu.Unlock()
	}
	if n := c1.Mailbox().NumMessages; n != 2 {
		t.Errorf("client 1 counts %d messages, want 2", n)
	}
}

// LOGINDISABLED before TLS: imapclient sees it and the server refuses LOGIN.
func TestClientLoginDisabled(t *testing.T) {
	env := newEnv(t, envConfig{tls: true})
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	caps := c.Caps()
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Errorf("caps before TLS: %v", caps)
	}
	err = c.Login(alice, password).Wait()
	if err == nil || !strings.Contains(err.Error(), "PRIVACYREQUIRED") && !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("LOGIN before TLS: %v", err)
	}
}
