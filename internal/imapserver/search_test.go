package imapserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	wire "pillarbox/internal/imap"
	"pillarbox/internal/message"
	"pillarbox/internal/store"
	"pillarbox/internal/testkit"
)

// searchMsgs is the mailbox the search transcripts (testdata/search/*.txt)
// run against: alice's INBOX holds these, UIDs 1 to 6 in this order.
// Sizes (RFC822.SIZE) are checked by TestSearchCorpusSizes, since the
// LARGER/SMALLER transcripts depend on them.
var searchMsgs = []struct {
	flags  []string
	date   time.Time
	prefix string
	body   string
}{
	{ // 1: plain ASCII, a delivery prefix line.
		flags:  []string{`\Seen`},
		date:   time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC),
		prefix: "Delivered-To: alice@example.test\r\n",
		body: "From: \"Alice Example\" <alice@example.test>\r\nTo: bob@example.test\r\n" +
			"Cc: Carol <carol@example.org>\r\nSubject: Quarterly report\r\n" +
			"Date: Mon, 02 Feb 2026 09:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\n" +
			"The quarterly numbers look fine.\r\n",
	},
	{ // 2: encoded words, two recipients, quoted-printable UTF-8; the
		// Date's day as written (3 Feb) differs from UTC's (4 Feb).
		flags: []string{`\Answered`, `\Seen`},
		date:  time.Date(2026, 2, 4, 0, 30, 0, 0, time.FixedZone("", 3600)), // 3 Feb in UTC
		body: "From: =?UTF-8?Q?Ren=C3=A9e_M=C3=BCller?= <renee@example.net>\r\n" +
			"To: alice@example.test, \"Bob B\" <bob@example.test>\r\n" +
			"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgWsO8cmljaA==?=\r\n" +
			"Date: Tue, 03 Feb 2026 23:30:00 -0800\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Sch=C3=B6ne Gr=C3=BC=C3=9Fe vom See.\r\n",
	},
	{ // 3: no Date header, Bcc, a Latin-1 body.
		flags: []string{`$Important`, `\Flagged`},
		date:  time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		body: "From: dave@example.com\r\nTo: alice@example.test\r\nBcc: secret@example.org\r\n" +
			"Subject: Menu\r\nX-Priority: 1\r\n" +
			"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
			"Caf\xe9 cr\xe8me br\xfbl\xe9e\r\n",
	},
	{ // 4: multipart with an attachment (not searched as text), a group, large.
		flags: []string{`\Deleted`, `\Draft`},
		date:  time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		body: "From: Billing <billing@example.com>\r\n" +
			"To: Team: alice@example.test, \"Bob B\" <bob@example.test>;\r\n" +
			"Subject: Invoice 42\r\nDate: Mon, 02 Mar 2026 00:30:00 +0100\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n" +
			"--b1\r\nContent-Type: application/octet-stream; name=\"inv.bin\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" +
			strings.Repeat("U0VDUkVUV09SRCBTRUNSRVRXT1JEIFNFQ1JFVFdPUkQgU0VDUkVUV09SRCBTRUNSRVRXT1JE\r\n", 30) +
			"--b1--\r\n",
	},
	{ // 5: HTML only.
		date: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC),
		body: "From: News <news@example.org>\r\nTo: alice@example.test\r\nSubject: Newsletter\r\n" +
			"Date: Tue, 03 Mar 2026 10:00:00 +0000\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
			"<html><body><p>Hello &amp; welcome to the <b>spring</b> edition</p></body></html>\r\n",
	},
	{ // 6: Latin-1 encoded word in the name, an empty group, a broken Date.
		flags: []string{`$Work`, `\Seen`},
		date:  time.Date(2026, 3, 3, 11, 0, 0, 0, time.UTC),
		body: "From: =?ISO-8859-1?Q?Fran=E7ois?= <francois@example.fr>\r\nTo: undisclosed-recipients:;\r\n" +
			"Subject: Re: Quarterly report\r\nDate: sometime last week\r\nIn-Reply-To: <1@example.test>\r\n\r\n" +
			"ok\r\n",
	},
}

// deliverSearchMsgs stores searchMsgs in alice's INBOX.
func deliverSearchMsgs(t testing.TB, env *testEnv) {
	t.Helper()
	for _, m := range searchMsgs {
		_, err := env.st.Deliver(context.Background(), &store.Delivery{
			Blob: strings.NewReader(m.body), InternalDate: m.date,
			Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: "INBOX", Flags: m.flags, Prefix: []byte(m.prefix)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSearchTranscripts replays testdata/search/*.txt (format in
// transcript_test.go) with searchMsgs in alice's INBOX. They live in a
// directory of their own because TestTranscripts runs testdata/*.txt on
// an empty mailbox.
func TestSearchTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/search/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no search transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			cfg, script := readScript(t, f)
			env := newEnv(t, cfg)
			deliverSearchMsgs(t, env)
			tr := &transcript{t: t, env: env, conns: map[string]*client{}, path: f, vars: map[string]string{}}
			tr.use("1")
			for _, l := range script {
				tr.step(l)
			}
		})
	}
}

// TestSearchCorpusSizes pins the sizes the LARGER/SMALLER transcripts use.
func TestSearchCorpusSizes(t *testing.T) {
	env := newEnv(t, envConfig{})
	deliverSearchMsgs(t, env)
	msgs, err := env.st.Messages(context.Background(), env.mailbox(env.alice, "INBOX").ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, m := range msgs {
		sizes = append(sizes, m.Size)
	}
	if want := []int64{263, 330, 203, 2619, 240, 181}; !slices.Equal(sizes, want) {
		t.Errorf("sizes %v, want %v", sizes, want)
	}
}

// TestSearchClient drives SEARCH and UID SEARCH with go-imap v2's
// imapclient: its criteria encoding (NOT/OR lists, quoted dates, UTF-8
// literals, MODSEQ) and its parsing of SEARCH and ESEARCH responses.
func TestSearchClient(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	deliverSearchMsgs(t, env)
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(alice, password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	day := func(d int, m time.Month) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	seqs := []struct {
		name string
		crit imap.SearchCriteria
		want []uint32
	}{
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "quarterly"}}}, []uint32{1, 6}},
		{"utf-8 from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "Renée"}}}, []uint32{2}},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Priority", Value: ""}}}, []uint32{3}},
		{"body", imap.SearchCriteria{Body: []string{"crème"}}, []uint32{3}},
		{"text", imap.SearchCriteria{Text: []string{"invoice"}}, []uint32{4}},
		{"flags", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}, NotFlag: []imap.Flag{"$Work"}}, []uint32{1, 2}},
		{"dates", imap.SearchCriteria{Since: day(2, time.March), Before: day(3, time.March)}, []uint32{4}},
		{"on", imap.SearchCriteria{Since: day(3, time.March), Before: day(4, time.March)}, []uint32{5, 6}},
		{"sent", imap.SearchCriteria{SentSince: day(3, time.February), SentBefore: day(2, time.March)}, []uint32{2, 3}},
		{"sizes", imap.SearchCriteria{Larger: 200, Smaller: 300}, []uint32{1, 3, 5}},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []uint32{3, 4, 5}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagDraft}}, {Body: []string{"welcome"}}}}}, []uint32{4, 5}},
		{"seqset", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2, 3, 4)}, Flag: []imap.Flag{imap.FlagSeen}}, []uint32{2}},
	}
	for _, tc := range seqs {
		data, err := c.Search(&tc.crit, nil).Wait()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := data.AllSeqNums(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// ESEARCH through RETURN, parsed by the client.
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}},
		&imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true, ReturnAll: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if data.Min != 3 || data.Max != 5 || data.Count != 3 || !slices.Equal(data.AllUIDs(), []imap.UID{3, 4, 5}) {
		t.Errorf("ESEARCH: min %d max %d count %d all %v", data.Min, data.Max, data.Count, data.All)
	}
	// MODSEQ: the highest MODSEQ of the matches, exactly.
	mb := env.mailbox(env.alice, "INBOX")
	upd, _, err := env.st.StoreFlags(t.Context(), mb.ID, []uint32{4}, store.FlagAdd, []string{"$Paid"}, 0)
	if err != nil || len(upd) != 1 {
		t.Fatalf("StoreFlags: %v %v", upd, err)
	}
	data, err = c.Search(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: upd[0].ModSeq}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data.AllSeqNums(), []uint32{4}) || data.ModSeq != upd[0].ModSeq {
		t.Errorf("MODSEQ search: %v modseq %d, want [4] %d", data.AllSeqNums(), data.ModSeq, upd[0].ModSeq)
	}
	m1, err := env.st.Message(t.Context(), mb.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err = c.UIDSearch(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 1}, UID: []imap.UIDSet{imap.UIDSetNum(1)}},
		&imap.SearchOptions{ReturnMin: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if data.Min != 1 || data.ModSeq != m1.ModSeq {
		t.Errorf("ESEARCH MODSEQ: min %d modseq %d, want 1 %d", data.Min, data.ModSeq, m1.ModSeq)
	}
}

// benchSearchMsg is message i of the search benchmark: 2-6 KiB, one of
// 37 senders, a subject from a short list (every 10th with "Invoice",
// every 4th B-encoded), "aardvark" in every 3rd body.
func benchSearchMsg(i int) []byte {
	senders := []string{"Olivia Hughes <olivia.hughes@example.org>", "Liam Garcia <liam.garcia@example.net>",
		"Emma Tanaka <emma.tanaka@example.com>", "Noah Okafor <noah.okafor@mail.example.edu>"}
	topics := []string{"Project update", "Weekly report", "Team lunch", "Budget review", "Release notes"}
	subject := topics[i%len(topics)] + " " + strconv.Itoa(i)
	if i%10 == 0 {
		subject = "Invoice " + strconv.Itoa(i)
	}
	if i%4 == 1 {
		subject = "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(subject+" – ü")) + "?="
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: Alice <alice@example.test>\r\nSubject: %s\r\n", senders[(i*7)%37%len(senders)], subject)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%d@bench.example>\r\nX-Mailer: Mailer %d\r\n", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*13*time.Minute).Format(time.RFC1123Z), i, i%6)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	words := strings.Fields("the of and to in is that for it as with was on be by at this have from or one had not but what all were when we there can an your which their said project budget release schedule report review draft server cluster backup")
	size := 2048 + (i*7919)%4096
	for n := 0; b.Len() < size; n++ {
		if i%3 == 0 && n == 40 {
			b.WriteString("aardvark ")
		}
		b.WriteString(words[(i+n*31)%len(words)])
		if n%12 == 11 {
			b.WriteString("\r\n")
		} else {
			b.WriteString(" ")
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// BenchmarkSearch runs UID SEARCH over a real socket on a 10,000-message
// mailbox (full-text index built): header keys (from the stored
// envelope), HEADER (reads header sections), BODY (the index), flags
// and dates. Warm: the Server's search cache holds the mailbox (every
// search after the first); Cold: a new cache for every search, so sizes,
// dates and envelopes are read from the store (XCOLDSEARCH, a SEARCH
// with its own empty cache).
func BenchmarkSearch(b *testing.B) {
	const n = 10000
	env := newEnv(b, envConfig{plaintext: true, setup: func(s *Server) {
		s.cmds["XCOLDSEARCH"] = command{states: inSelected, run: func(s *session, c *wire.Command) error {
			return cmdSearch(s, c, newSearchCache(searchCacheBytes))
		}}
	}})
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for lo := 0; lo < n; lo += 500 {
		var ds []*store.Delivery
		for i := lo; i < lo+500; i++ {
			var flags []string
			if i%10 < 7 {
				flags = []string{store.FlagSeen}
			}
			ds = append(ds, &store.Delivery{Blob: bytes.NewReader(benchSearchMsg(i)), InternalDate: start.Add(time.Duration(i) * 13 * time.Minute),
				Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: "INBOX", Flags: flags,
					Prefix: []byte("Delivered-To: alice@example.test\r\n")}}})
		}
		if _, err := env.st.DeliverBatch(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := env.st.IndexPending(ctx); err != nil {
		b.Fatal(err)
	}
	c := env.dial()
	_ = c.conn.SetDeadline(time.Time{}) // slow Cold runs may take longer than dial's deadline
	c.login(alice)
	c.send("S1 SELECT INBOX\r\n")
	c.until("S1 OK")
	queries := []struct{ name, q string }{
		{"Subject", `SUBJECT "invoice"`},
		{"From", `FROM "olivia.hughes"`},
		{"Body", `BODY "aardvark"`},
		{"UnseenSince", `UNSEEN SINCE 1-Feb-2026`},
		{"Header", `HEADER X-Mailer "mailer 3"`},
	}
	for _, q := range queries {
		for _, mode := range []string{"Warm", "Cold"} {
			cmd := map[string]string{"Warm": "UID SEARCH", "Cold": "XCOLDSEARCH"}[mode]
			benchSearchQuery(b, c, q.name+"/"+mode, cmd+" "+q.q, n)
		}
	}
}

// benchSearchQuery runs one search command repeatedly.
func benchSearchQuery(b *testing.B, c *client, name, cmd string, n int) {
	b.Run(name, func(b *testing.B) {
		c.send("W " + cmd + "\r\n") // fills the cache for Warm
		c.until("W ")
		hits := 0
		for b.Loop() {
			c.send("T " + cmd + "\r\n")
			lines := c.until("T ")
			if !strings.HasPrefix(lines[len(lines)-1], "T OK") || !strings.HasPrefix(lines[0], "* SEARCH") {
				b.Fatalf("%s: %q", cmd, lines)
			}
			hits = len(strings.Fields(lines[0])) - 2
		}
		b.ReportMetric(float64(hits), "hits")
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func TestSentDay(t *testing.T) {
	for in, want := range map[string]int{
		"Mon, 02 Feb 2026 09:00:00 +0000":    20260202,
		"Tue, 3 Feb 2026 23:30:00 -0800":     20260203,
		"3 feb 2026 23:30 GMT":               20260203,
		"Fri, 31 Dec 99 23:59:59 -0500":      19991231,
		"1 Jan 07 00:00 +0000":               20070101,
		"Thu,  1 Jan 1970 00:00:00 +0000":    19700101,
		"  Wed , 4 Mar 2026 1:2:3 +0100 (X)": 20260304,
		"":                                   0,
		"sometime last week":                 0,
		"32 Jan 2026 10:00 +0000":            0,
		"2026-03-04T10:00:00Z":               0,
	} {
		if got := sentDay(in); got != want {
			t.Errorf("sentDay(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestFormatAddresses(t *testing.T) {
	list := message.ParseAddressList(`=?UTF-8?Q?Ren=C3=A9e?= <renee@example.net>, Team: a@b.example, "B, C" <c@d.example>;, plain@x.example`)
	want := "Renée <renee@example.net>, Team: a@b.example, B, C <c@d.example>;, plain@x.example"
	if got := formatAddresses(list); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// The search cache stays within its budget, dropping the least recently
// used mailbox first, and a mailbox larger than the budget is not kept.
func TestSearchCacheEvict(t *testing.T) {
	c := newSearchCache(10 * fieldOverhead)
	put := func(mb int64, uids ...uint32) {
		m := map[uint32]*searchFields{}
		for _, u := range uids {
			m[u] = &searchFields{size: int64(u), hasEnv: true}
		}
		c.put(mb, m)
	}
	has := func(mb int64, uid uint32) bool {
		out := make([]*searchFields, 1)
		c.get(mb, []uint32{uid}, out, false)
		return out[0] != nil && out[0].size == int64(uid)
	}
	put(1, 1, 2, 3)
	put(2, 1, 2, 3)
	put(3, 1, 2, 3)
	if !has(1, 2) { // mailbox 1 is now the most recently used
		t.Fatal("mailbox 1 missing")
	}
	put(4, 1, 2, 3) // over budget: mailbox 2 goes
	if has(2, 1) || !has(1, 1) || !has(3, 1) || !has(4, 3) {
		t.Errorf("after eviction: 1:%v 2:%v 3:%v 4:%v", has(1, 1), has(2, 1), has(3, 1), has(4, 3))
	}
	if c.bytes > c.limit {
		t.Errorf("cache holds %d bytes, limit %d", c.bytes, c.limit)
	}
	c.putHeader(3, "x-a", 1, []string{"v"})
	if v, ok := c.header(3, "x-a", 1); !ok || len(v) != 1 || v[0] != "v" {
		t.Errorf("header: %v %v", v, ok)
	}
	if _, ok := c.header(3, "x-a", 2); ok {
		t.Error("header of an uncached message")
	}
	put(5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11) // alone over the budget
	if has(5, 1) || c.bytes > c.limit {
		t.Errorf("oversized mailbox kept (%d bytes)", c.bytes)
	}
	// Envelope-less entries do not satisfy an envelope lookup.
	c.put(6, map[uint32]*searchFields{1: {size: 1}})
	out := make([]*searchFields, 1)
	if c.get(6, []uint32{1}, out, true); out[0] != nil {
		t.Error("entry without envelope returned for an envelope search")
	}
}

// FuzzSearch sends arbitrary search programs to a session with
// searchMsgs selected; the session must end cleanly and never panic.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		"ALL", "OR SEEN (FLAGGED BODY x)", "NOT NOT UID 1:*", "RETURN (MIN MAX SAVE) $",
		"CHARSET ISO-8859-1 SUBJECT \xe9", "HEADER X-Priority \"\" SENTBEFORE 1-Jan-2030",
		"MODSEQ \"/flags/\\\\seen\" all 1", "1:3,* LARGER 10 SMALLER 99999 ON 3-Mar-2026",
		"RETURN () TEXT {3}\r\nabc", "((((((SEEN))))))", "OR OR OR",
	} {
		f.Add(s)
	}
	env := newEnv(f, envConfig{plaintext: true, opts: Options{MaxConnsPerIP: -1, MaxConnsPerAccount: -1},
		setup: func(s *Server) { // log in without the (slow) password hash
			s.cmds["XPREAUTH"] = command{states: inNotAuth, run: func(s *session, c *wire.Command) error {
				acct, err := s.srv.opts.Store.Account(s.ctx, alice)
				if err != nil {
					return err
				}
				return s.loggedIn("XPREAUTH", acct)
			}}
		}})
	deliverSearchMsgs(f, env)
	f.Fuzz(func(t *testing.T, prog string) {
		testkit.FeedSession(t, env.addr, []byte("P XPREAUTH\r\nS SELECT INBOX\r\nQ SEARCH "+prog+"\r\nZ LOGOUT\r\n"), env.logs)
	})
}
