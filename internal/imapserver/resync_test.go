package imapserver

import (
	"fmt"
	"maps"
	"math/rand"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	pimap "pillarbox/internal/imap"
)

// CONDSTORE/QRESYNC resynchronisation (RFC 7162 3.2.5, 3.2.6) as an
// offline client does it: a raw client remembers UIDVALIDITY,
// HIGHESTMODSEQ and the flags of every UID, and disconnects; another
// client (go-imap's imapclient, an independent implementation) flags,
// unflags, expunges, appends, moves and copies at random; the first
// client comes back and must get exactly what changed:
//   - SELECT ... (QRESYNC (uidvalidity modseq known-uids)): VANISHED
//     (EARLIER) lists exactly the known UIDs that are gone, a FETCH
//     (FLAGS UID MODSEQ) comes for exactly the messages whose MODSEQ is
//     above the remembered one, with the MODSEQ and flags the other
//     client sees, and HIGHESTMODSEQ is the other client's;
//   - SELECT, then UID FETCH 1:* (FLAGS) (CHANGEDSINCE m VANISHED): the
//     same answers.
//
// The client's model after applying them equals the mailbox.
func TestQresyncResync(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			testQresyncRound(t, seed, seed%2 == 0)
		})
	}
}

// mboxModel is what an offline client remembers of a mailbox.
type mboxModel struct {
	uidValidity uint32
	highest     uint64
	flags       map[uint32]string // UID -> sorted flags, space-separated
}

func testQresyncRound(t *testing.T, seed int64, viaFetch bool) {
	env := newEnv(t, envConfig{plaintext: true})
	rnd := rand.New(rand.NewSource(seed))
	for i := 0; i < 80; i++ {
		var flags []string
		if rnd.Intn(3) == 0 {
			flags = append(flags, `\Seen`)
		}
		env.deliver(env.alice, "INBOX", flags, "")
	}
	for i := 0; i < 5; i++ {
		env.deliver(env.alice, "Archive", nil, "")
	}

	// The offline client's first session.
	a := env.dial()
	a.login(alice)
	a.send("E1 ENABLE QRESYNC\r\n")
	a.until("E1 OK")
	model := &mboxModel{flags: map[uint32]string{}}
	sel := a.selectQresync(t, "S1 SELECT INBOX\r\n", model)
	if len(sel.vanished) != 0 || len(sel.fetched) != 0 {
		t.Fatalf("plain SELECT sent VANISHED/FETCH: %+v", sel)
	}
	a.send("F1 UID FETCH 1:* (FLAGS)\r\n")
	for _, l := range a.until("F1 OK") {
		if u, fl, _, ok := parseFetchFlags(l); ok {
			model.flags[u] = fl
		}
	}
	if len(model.flags) != 80 {
		t.Fatalf("model has %d messages, want 80", len(model.flags))
	}
	a.send("L9 LOGOUT\r\n")
	a.until("L9 OK")

	b := dialGoIMAP(t, env)
	if _, err := b.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	randomChanges(t, b, rnd)
	truth, bHighest := mailboxTruth(t, b)
	st, err := b.Status("INBOX", &imap.StatusOptions{UIDNext: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}

	// Back online.
	a = env.dial()
	a.login(alice)
	a.send("E2 ENABLE QRESYNC\r\n")
	a.until("E2 OK")
	known := make([]uint32, 0, len(model.flags))
	for u := range model.flags {
		known = append(known, u)
	}
	var got resyncAnswer
	if viaFetch {
		got = a.selectQresync(t, "S2 SELECT INBOX\r\n", nil)
		a.send(fmt.Sprintf("F2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)\r\n", model.highest))
		got.addLines(t, a.until("F2 "))
	} else {
		cmd := fmt.Sprintf("S2 SELECT INBOX (QRESYNC (%d %d %s))\r\n", model.uidValidity, model.highest, pimap.FormatUIDs(known))
		got = a.selectQresync(t, cmd, nil)
	}
	// Known UIDs given: only those are reported vanished; UID FETCH 1:*
	// reports every UID expunged since, also appended ones the client
	// never saw.
	maxUID := uint32(80)
	if viaFetch {
		maxUID = uint32(st.UIDNext) - 1
	}
	checkResync(t, model, truth, bHighest, maxUID, got)
}

// resyncAnswer is what a resynchronising SELECT/UID FETCH returned.
type resyncAnswer struct {
	uidValidity uint32
	exists      int
	highest     uint64
	vanished    []uint32
	fetched     map[uint32]fetchedFlags
}

type fetchedFlags struct {
	flags  string
	modseq uint64
}

var (
	reVanished = regexp.MustCompile(`^\* VANISHED \(EARLIER\) ([0-9:,]+)$`)
	reExists   = regexp.MustCompile(`^\* ([0-9]+) EXISTS$`)
	reUIDV     = regexp.MustCompile(`^\* OK \[UIDVALIDITY ([0-9]+)\]`)
	reHighest  = regexp.MustCompile(`^\* OK \[HIGHESTMODSEQ ([0-9]+)\]`)
	reFlagsUID = regexp.MustCompile(`^\* [0-9]+ FETCH \((?:UID ([0-9]+) )?FLAGS \(([^)]*)\)(?: UID ([0-9]+))?(?: MODSEQ \(([0-9]+)\))?\)$`)
)

// parseFetchFlags parses "* n FETCH (FLAGS (...) UID u [MODSEQ (m)])" in
// either item order.
func parseFetchFlags(l string) (uid uint32, flags string, modseq uint64, ok bool) {
	m := reFlagsUID.FindStringSubmatch(l)
	if m == nil {
		return 0, "", 0, false
	}
	us := m[1] + m[3]
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, "", 0, false
	}
	f := strings.Fields(m[2])
	slices.Sort(f)
	ms, _ := strconv.ParseUint(m[4], 10, 64)
	return uint32(u), strings.Join(f, " "), ms, true
}

// selectQresync sends a SELECT and collects its answer; with model set it
// records UIDVALIDITY and HIGHESTMODSEQ there.
func (c *client) selectQresync(t *testing.T, cmd string, model *mboxModel) resyncAnswer {
	t.Helper()
	c.send(cmd)
	tag, _, _ := strings.Cut(cmd, " ")
	lines := c.until(tag + " ")
	if !strings.HasPrefix(lines[len(lines)-1], tag+" OK") {
		t.Fatalf("%s: %v", strings.TrimSpace(cmd), lines)
	}
	var r resyncAnswer
	r.addLines(t, lines)
	if model != nil {
		model.uidValidity, model.highest = r.uidValidity, r.highest
	}
	return r
}

func (r *resyncAnswer) addLines(t *testing.T, lines []string) {
	t.Helper()
	if r.fetched == nil {
		r.fetched = map[uint32]fetchedFlags{}
	}
	for _, l := range lines {
		num := func(s string) uint64 {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("bad number in %q", l)
			}
			return n
		}
		if m := reVanished.FindStringSubmatch(l); m != nil {
			set, err := pimap.ParseSeqSet(m[1])
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			for _, rg := range set.Ranges {
				for u := rg.Start; u <= rg.Stop; u++ {
					r.vanished = append(r.vanished, u)
				}
			}
		} else if m := reExists.FindStringSubmatch(l); m != nil {
			r.exists = int(num(m[1]))
		} else if m := reUIDV.FindStringSubmatch(l); m != nil {
			r.uidValidity = uint32(num(m[1]))
		} else if m := reHighest.FindStringSubmatch(l); m != nil {
			r.highest = num(m[1])
		} else if u, fl, ms, ok := parseFetchFlags(l); ok {
			if _, dup := r.fetched[u]; dup {
				t.Errorf("UID %d reported twice", u)
			}
			r.fetched[u] = fetchedFlags{fl, ms}
		} else if strings.HasPrefix(l, "* VANISHED") || strings.HasPrefix(l, "* ") && strings.Contains(l, "EXPUNGE") {
			t.Errorf("unexpected %q", l)
		}
	}
}

// randomChanges makes 60 random changes through b: flag changes
// (including ones that end where they began), expunges, appends (some
// then changed or expunged again), moves out and copies in.
func randomChanges(t *testing.T, b *imapclient.Client, rnd *rand.Rand) {
	t.Helper()
	flags := []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, "$Label1", imap.FlagDraft}
	uids := func() []imap.UID {
		truth, _ := mailboxTruth(t, b)
		var out []imap.UID
		for u := range truth {
			out = append(out, imap.UID(u))
		}
		slices.Sort(out)
		return out
	}
	for i := 0; i < 60; i++ {
		cur := uids()
		if len(cur) < 10 {
			break
		}
		pick := func(n int) imap.UIDSet {
			var s imap.UIDSet
			for j := 0; j < n; j++ {
				s.AddNum(cur[rnd.Intn(len(cur))])
			}
			return s
		}
		var err error
		switch op := rnd.Intn(10); {
		case op < 5:
			storeOp := []imap.StoreFlagsOp{imap.StoreFlagsAdd, imap.StoreFlagsDel, imap.StoreFlagsSet}[rnd.Intn(3)]
			err = b.Store(pick(1+rnd.Intn(3)), &imap.StoreFlags{Op: storeOp, Silent: true,
				Flags: []imap.Flag{flags[rnd.Intn(len(flags))]}}, nil).Close()
		case op < 7:
			set := pick(1 + rnd.Intn(2))
			if err = b.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
				err = b.UIDExpunge(set).Close()
			}
		case op < 8:
			msg := "From: b@example.test\r\nSubject: appended\r\n\r\nnew\r\n"
			cmd := b.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{flags[rnd.Intn(len(flags))]}})
			cmd.Write([]byte(msg))
			cmd.Close()
			_, err = cmd.Wait()
		case op < 9:
			_, err = b.Move(pick(1), "Junk").Wait()
		default:
			if _, err = b.Select("Archive", nil).Wait(); err == nil {
				_, err = b.Copy(imap.SeqSetNum(uint32(1+rnd.Intn(5))), "INBOX").Wait()
			}
			if err == nil {
				_, err = b.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
			}
		}
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
}

// mailboxTruth returns UID -> flags/MODSEQ of INBOX as b sees it, and
// HIGHESTMODSEQ (STATUS).
func mailboxTruth(t *testing.T, b *imapclient.Client) (map[uint32]fetchedFlags, uint64) {
	t.Helper()
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := b.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]fetchedFlags{}
	for _, m := range msgs {
		var f []string
		for _, fl := range m.Flags {
			f = append(f, string(fl))
		}
		slices.Sort(f)
		out[uint32(m.UID)] = fetchedFlags{strings.Join(f, " "), m.ModSeq}
	}
	st, err := b.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return out, st.HighestModSeq
}

// checkResync compares a resync answer with the mailbox as it is.
func checkResync(t *testing.T, model *mboxModel, truth map[uint32]fetchedFlags, highest uint64, maxUID uint32, got resyncAnswer) {
	t.Helper()
	var wantVanished []uint32
	for u := uint32(1); u <= maxUID; u++ {
		if _, ok := truth[u]; !ok {
			wantVanished = append(wantVanished, u)
		}
	}
	slices.Sort(got.vanished)
	if !slices.Equal(got.vanished, wantVanished) {
		t.Errorf("VANISHED (EARLIER) %v, want %v", got.vanished, wantVanished)
	}
	wantFetched := map[uint32]fetchedFlags{}
	for u, f := range truth {
		if f.modseq > model.highest {
			wantFetched[u] = f
		}
	}
	if !maps.Equal(got.fetched, wantFetched) {
		t.Errorf("FETCH responses %v,\nwant %v", got.fetched, wantFetched)
	}
	if got.highest != 0 && got.highest != highest {
		t.Errorf("HIGHESTMODSEQ %d, the other client sees %d", got.highest, highest)
	}
	if got.exists != len(truth) {
		t.Errorf("EXISTS %d, want %d", got.exists, len(truth))
	}
	// The client's model, updated, is the mailbox.
	for _, u := range got.vanished {
		delete(model.flags, u)
	}
	for u, f := range got.fetched {
		model.flags[u] = f.flags
	}
	if len(model.flags) != len(truth) {
		t.Errorf("resynchronised model has %d messages, the mailbox %d", len(model.flags), len(truth))
	}
	for u, f := range truth {
		if model.flags[u] != f.flags {
			t.Errorf("UID %d: model flags %q, mailbox %q", u, model.flags[u], f.flags)
		}
	}
	if len(wantVanished) == 0 || len(wantFetched) == 0 {
		t.Errorf("the random changes expunged %d and changed %d known messages: too few to test", len(wantVanished), len(wantFetched))
	}
}

// dialGoIMAP logs alice in with go-imap's client over plain TCP.
func dialGoIMAP(t *testing.T, env *testEnv) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(alice, password).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}
