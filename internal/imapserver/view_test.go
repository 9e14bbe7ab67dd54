package imapserver

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// testView is a view of mailbox 7 holding uids, every message at modseq 10.
func testView(uids ...uint32) *view {
	v := &view{mb: store.Mailbox{ID: 7}, dirty: map[uint32]struct{}{}, expunged: map[uint32]struct{}{},
		flagIndex: map[string]uint32{}, keywords: map[string]struct{}{}}
	for _, u := range uids {
		v.msgs = append(v.msgs, viewMsg{uid: u, flags: v.intern(nil), modseq: 10})
	}
	v.exists = len(v.msgs)
	return v
}

// flushed returns what flush writes.
func flushed(t *testing.T, v *view, allowExpunge, qresync, condstore bool) string {
	t.Helper()
	var buf bytes.Buffer
	s := &session{w: imap.NewWriter(&buf), ctx: context.Background(), qresync: qresync, condstore: condstore}
	if err := v.flush(s, allowExpunge); err != nil {
		t.Fatal(err)
	}
	if err := s.w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestViewResolve(t *testing.T) {
	v := testView(3, 5, 9, 12)
	for _, tc := range []struct {
		set  string
		uid  bool
		want []uint32
		bad  bool
	}{
		{set: "1", want: []uint32{3}},
		{set: "*", want: []uint32{12}},
		{set: "2:*", want: []uint32{5, 9, 12}},
		{set: "*:2", want: []uint32{5, 9, 12}},
		{set: "4,1,2:3,1:2", want: []uint32{3, 5, 9, 12}},
		{set: "5", bad: true},
		{set: "1:5", bad: true},
		{set: "1:*", uid: true, want: []uint32{3, 5, 9, 12}},
		{set: "4:9", uid: true, want: []uint32{5, 9}},
		{set: "100:*", uid: true, want: []uint32{12}}, // "n:*" always has the last UID
		{set: "13:4294967295", uid: true, want: nil},
		{set: "1,2,4", uid: true, want: nil},
		{set: "9,3,3:5", uid: true, want: []uint32{3, 5, 9}},
	} {
		set, err := imap.ParseSeqSet(tc.set)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.resolve(set, tc.uid)
		if (err != nil) != tc.bad {
			t.Errorf("resolve(%q, uid=%v): err %v, want bad=%v", tc.set, tc.uid, err, tc.bad)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("resolve(%q, uid=%v) = %v, want %v", tc.set, tc.uid, got, tc.want)
		}
	}
	empty := testView()
	star, _ := imap.ParseSeqSet("1:*")
	if got, err := empty.resolve(star, false); err != nil || len(got) != 0 {
		t.Errorf("1:* on an empty mailbox: %v, %v", got, err)
	}
	v.setSearchRes([]uint32{12, 4, 5})
	got, _ := v.resolve(imap.SeqSet{Dollar: true}, false)
	if !slices.Equal(got, []uint32{5, 12}) {
		t.Errorf("$ = %v, want [5 12] (4 is not in the mailbox)", got)
	}
	if u, ok := v.seqToUID(3); !ok || u != 9 {
		t.Errorf("seqToUID(3) = %d, %v", u, ok)
	}
	if sq, ok := v.uidToSeq(12); !ok || sq != 4 {
		t.Errorf("uidToSeq(12) = %d, %v", sq, ok)
	}
	if _, ok := v.uidToSeq(4); ok {
		t.Errorf("uidToSeq(4) found a message")
	}
}

func TestViewHoldsExpunges(t *testing.T) {
	v := testView(1, 2, 3, 4)
	v.take(store.Change{Kind: store.ChangeExpunge, MailboxID: 7, UID: 2})
	v.take(store.Change{Kind: store.ChangeAppend, MailboxID: 7, UID: 5, ModSeq: 12})
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 3, ModSeq: 13, Flags: []string{`\Seen`}})
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 8, UID: 4, ModSeq: 14, Flags: []string{`\Seen`}}) // other mailbox
	// Held: the expunged message keeps its number, EXISTS counts it.
	got := flushed(t, v, false, false, false)
	want := "* 5 EXISTS\r\n* 3 FETCH (FLAGS (\\Seen) UID 3)\r\n"
	if got != want {
		t.Fatalf("held flush:\n%q\nwant\n%q", got, want)
	}
	if !v.isExpunged(2) {
		t.Errorf("UID 2 not marked expunged")
	}
	// A flag change of an expunged message is not reported.
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 2, ModSeq: 15, Flags: []string{`\Seen`}})
	if got := flushed(t, v, false, false, false); got != "" {
		t.Errorf("second held flush wrote %q", got)
	}
	if got := flushed(t, v, true, false, false); got != "* 2 EXPUNGE\r\n" {
		t.Errorf("allowed flush wrote %q", got)
	}
	if v.count() != 4 || v.exists != 4 {
		t.Errorf("count %d exists %d, want 4", v.count(), v.exists)
	}
}

func TestViewVanishedAndModseq(t *testing.T) {
	v := testView(1, 2, 3, 4, 5)
	for _, u := range []uint32{2, 3, 5} {
		v.take(store.Change{Kind: store.ChangeExpunge, MailboxID: 7, UID: u})
	}
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 4, ModSeq: 20, Flags: []string{`$Junk`, `\Seen`}})
	got := flushed(t, v, true, true, true)
	want := "* VANISHED 2:3,5\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n" +
		"* 2 FETCH (FLAGS ($Junk \\Seen) UID 4 MODSEQ (20))\r\n"
	if got != want {
		t.Fatalf("flush:\n%q\nwant\n%q", got, want)
	}
	if v.highestModSeq != 20 {
		t.Errorf("highestModSeq %d, want 20", v.highestModSeq)
	}
}

func TestViewOwnChangesNotRepeated(t *testing.T) {
	v := testView(1, 2, 3)
	// The feed brings the session's own STORE before it reports it ...
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 2, ModSeq: 11, Flags: []string{`\Seen`}})
	v.noteFlags(2, 11, []string{`\Seen`})
	// ... or after.
	v.noteFlags(3, 12, []string{`\Flagged`})
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 3, ModSeq: 12, Flags: []string{`\Flagged`}})
	// An older change arriving late is ignored.
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 3, ModSeq: 11, Flags: nil})
	if got := flushed(t, v, true, false, true); got != "" {
		t.Errorf("own changes reported again: %q", got)
	}
	// Own expunge: reported at once, the feed's copy ignored.
	var buf bytes.Buffer
	s := &session{w: imap.NewWriter(&buf), ctx: context.Background()}
	v.reportExpunged(s, []uint32{1, 3, 99})
	_ = s.w.Flush()
	if got := buf.String(); got != "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n" {
		t.Errorf("own expunge wrote %q", got)
	}
	v.take(store.Change{Kind: store.ChangeExpunge, MailboxID: 7, UID: 1})
	v.take(store.Change{Kind: store.ChangeAppend, MailboxID: 7, UID: 2}) // already known
	if got := flushed(t, v, true, false, false); got != "" {
		t.Errorf("feed copies reported: %q", got)
	}
	if v.count() != 1 || v.exists != 1 {
		t.Errorf("count %d exists %d", v.count(), v.exists)
	}
}

func TestViewAppendThenExpungeUnannounced(t *testing.T) {
	v := testView(1)
	v.take(store.Change{Kind: store.ChangeAppend, MailboxID: 7, UID: 2, Flags: []string{"$New"}})
	v.take(store.Change{Kind: store.ChangeAppend, MailboxID: 7, UID: 3})
	v.take(store.Change{Kind: store.ChangeExpunge, MailboxID: 7, UID: 2})
	got := flushed(t, v, false, false, false)
	if got != "* 2 EXISTS\r\n" {
		t.Errorf("flush wrote %q", got)
	}
	if u, _ := v.seqToUID(2); u != 3 {
		t.Errorf("seq 2 is UID %d, want 3", u)
	}
	if strings.Contains(v.flagList(), "$New") {
		t.Errorf("keyword of a message never announced is listed")
	}
}

// A flag change published before the append of its message (the store
// publishes flag changes at commit, appends once durable) is kept and
// applied when the append arrives.
func TestViewFlagsBeforeAppend(t *testing.T) {
	v := testView(1)
	v.take(store.Change{Kind: store.ChangeFlags, MailboxID: 7, UID: 2, ModSeq: 12, Flags: []string{store.FlagSeen}})
	v.take(store.Change{Kind: store.ChangeAppend, MailboxID: 7, UID: 2, ModSeq: 11})
	got := flushed(t, v, true, false, true)
	if got != "* 2 EXISTS\r\n" {
		t.Errorf("flush wrote %q", got)
	}
	if i, ok := v.index(2); !ok || v.msgs[i].modseq != 12 || !strings.Contains(strings.Join(v.flagSets[v.msgs[i].flags], " "), store.FlagSeen) {
		t.Errorf("message 2 after the late append: %+v", v.msgs)
	}
	if len(v.early) != 0 {
		t.Errorf("early flags kept: %v", v.early)
	}
}
