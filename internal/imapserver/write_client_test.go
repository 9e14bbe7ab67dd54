package imapserver

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// go-imap v2's imapclient (an independent implementation) drives APPEND,
// STORE, COPY, MOVE and EXPUNGE and parses APPENDUID and COPYUID.
func TestClientAppendStoreCopyMoveExpunge(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envConfig{plaintext: true})
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(alice, password).Wait(); err != nil {
		t.Fatal(err)
	}
	uidValidity := func(name string) uint32 {
		st, err := c.Status(name, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return st.UIDValidity
	}
	inboxUV, archiveUV := uidValidity("INBOX"), uidValidity("Archive")
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, flags := range [][]imap.Flag{{imap.FlagSeen}, nil, {"$Label1"}} {
		msg := "From: a@example.test\r\nSubject: m" + string(rune('0'+i)) + "\r\n\r\nbody\r\n"
		cmd := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: date})
		if _, err := cmd.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := cmd.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if data.UIDValidity != inboxUV || data.UID != imap.UID(i+1) {
			t.Errorf("APPENDUID %+v, want %d %d", data, inboxUV, i+1)
		}
	}
	ap := c.Append("Nowhere", 1, nil)
	if _, err := ap.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := ap.Close(); err != nil {
		t.Fatal(err)
	}
	var ierr *imap.Error
	if _, err := ap.Wait(); !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeTryCreate {
		t.Errorf("APPEND to a missing mailbox: %v, want NO [TRYCREATE]", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !slices.Equal(msgs[0].Flags, []imap.Flag{imap.FlagFlagged, imap.FlagSeen}) ||
		!slices.Equal(msgs[1].Flags, []imap.Flag{imap.FlagFlagged}) {
		t.Errorf("STORE returned %+v", msgs)
	}
	cp, err := c.Copy(imap.SeqSetNum(2, 3), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cp.UIDValidity != archiveUV || cp.SourceUIDs.String() != "2:3" || cp.DestUIDs.String() != "1:2" {
		t.Errorf("COPYUID %d %s %s, want %d 2:3 1:2", cp.UIDValidity, cp.SourceUIDs, cp.DestUIDs, archiveUV)
	}
	mv, err := c.Move(imap.UIDSetNum(3), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if mv.UIDValidity != uidValidity("Trash") || mv.SourceUIDs.String() != "3" || mv.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID %+v", mv)
	}
	if n := c.Mailbox().NumMessages; n != 2 {
		t.Errorf("after MOVE the client counts %d messages, want 2", n)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err := c.Expunge().Collect()
	if err != nil || !slices.Equal(seqs, []uint32{1}) {
		t.Errorf("EXPUNGE gave %v, %v; want [1]", seqs, err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	seqs, err = c.UIDExpunge(imap.UIDSetNum(2)).Collect()
	if err != nil || !slices.Equal(seqs, []uint32{1}) {
		t.Errorf("UID EXPUNGE gave %v, %v; want [1]", seqs, err)
	}
	for name, want := range map[string]int{"INBOX": 0, "Archive": 2, "Trash": 1} {
		if got := env.mailbox(env.alice, name).Messages; got != want {
			t.Errorf("%s has %d messages, want %d", name, got, want)
		}
	}
	trash := env.mailbox(env.alice, "Trash")
	m, err := env.st.Message(t.Context(), trash.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !m.InternalDate.Equal(date) || strings.Join(m.Flags, " ") != "$Label1" {
		t.Errorf("moved message: date %v flags %v", m.InternalDate, m.Flags)
	}
}
