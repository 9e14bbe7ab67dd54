package imapserver

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"pillarbox/internal/store"
)

// fetchLines sends a command and returns every line up to its tagged
// reply (literal contents included as they come).
func fetchLines(c *client, tag, cmd string) []string {
	c.t.Helper()
	c.send(tag + " " + cmd + "\r\n")
	out := c.until(tag + " ")
	if !strings.HasPrefix(out[len(out)-1], tag+" OK") {
		c.t.Fatalf("%s: %q", cmd, out[len(out)-1])
	}
	return out
}

// TestFetchCacheSameBytes: a message FETCHed from the cache gives
// exactly the bytes the first FETCH rendered from the stored structure,
// whatever items filled the cache first, and the texts are cached.
func TestFetchCacheSameBytes(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	for _, name := range []string{"fetch_simple.eml", "fetch_nested.eml", "rfc9051_cafe.eml", "rfc9051_jones.eml", "rfc9051_smith.eml"} {
		env.deliver(env.alice, "INBOX", nil, readEML(t, name))
	}
	env.deliver(env.alice, "INBOX", []string{"$Work"}, "From: =?utf-8?q?J=C3=B6rg?= <j@example.test>\r\n"+
		"Subject: caf\xc3\xa9 \"quoted\" \\ back\r\nTo: undisclosed-recipients:;\r\n\r\nbody\r\n")
	const n = 6
	mb := env.mailbox(env.alice, "INBOX")
	c := env.dial()
	c.login(alice)
	fetchLines(c, "S", "SELECT INBOX")
	all := "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)"

	// Only ENVELOPE first: entries hold the envelope, no structures.
	envOnly := fetchLines(c, "A", "FETCH 1:* (ENVELOPE)")
	cached := make([]*fetchEntry, n)
	env.srv.fetch.get(mb.ID, []uint32{1, 2, 3, 4, 5, 6}, cached)
	for i, e := range cached {
		if e == nil || e.env == nil || e.bs != nil || e.body != nil {
			t.Fatalf("after FETCH ENVELOPE, entry %d = %+v", i+1, e)
		}
	}
	// The rest is rendered and added; then everything comes from the cache.
	first := fetchLines(c, "B", all)
	env.srv.fetch.get(mb.ID, []uint32{1, 2, 3, 4, 5, 6}, cached)
	for i, e := range cached {
		if e == nil || e.env == nil || e.bs == nil || e.body == nil {
			t.Fatalf("after the full FETCH, entry %d = %+v", i+1, e)
		}
	}
	second := fetchLines(c, "B", all)
	if !slices.Equal(first, second) {
		t.Fatalf("cached FETCH differs:\n%q\n%q", first, second)
	}
	if again := fetchLines(c, "A", "FETCH 1:* (ENVELOPE)"); !slices.Equal(envOnly, again) {
		t.Fatalf("cached ENVELOPE differs:\n%q\n%q", envOnly, again)
	}

	// A cache that keeps nothing renders every time: the same bytes.
	env.srv.fetch = newFetchCache(0)
	if uncached := fetchLines(c, "B", all); !slices.Equal(first, uncached) {
		t.Fatalf("uncached FETCH differs:\n%q\n%q", first, uncached)
	}
	// The path that reads rows from the store (a section needs the MIME
	// tree) gives the same item texts.
	tree := fetchLines(c, "C", "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE BINARY.SIZE[1])")
	strip := regexp.MustCompile(` BINARY\.SIZE\[1\] [0-9]+\)$`)
	for i := range tree {
		tree[i] = strip.ReplaceAllString(tree[i], ")")
	}
	if a, b := strings.Join(tree[:len(tree)-1], "\n"), strings.Join(first[:len(first)-1], "\n"); a != b {
		t.Fatalf("tree path:\n%s\ncached:\n%s", a, b)
	}
}

// TestFetchCacheFlags: with the envelopes cached, FLAGS still follows
// changes made by others at once, and a change the FETCH reported is not
// reported again.
func TestFetchCacheFlags(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	env.deliver(env.alice, "INBOX", nil, "")
	env.deliver(env.alice, "INBOX", nil, "")
	mb := env.mailbox(env.alice, "INBOX")
	c := env.dial()
	c.login(alice)
	fetchLines(c, "S", "SELECT INBOX")
	fetchLines(c, "A", "FETCH 1:* (FLAGS ENVELOPE)")
	if _, _, err := env.st.StoreFlags(t.Context(), mb.ID, []uint32{2}, store.FlagAdd, []string{store.FlagFlagged}, 0); err != nil {
		t.Fatal(err)
	}
	got := fetchLines(c, "B", "FETCH 1:* (FLAGS ENVELOPE)")
	if len(got) != 3 || !strings.HasPrefix(got[1], `* 2 FETCH (FLAGS (\Flagged) ENVELOPE (`) {
		t.Fatalf("after STORE elsewhere: %q", got)
	}
	if got := fetchLines(c, "C", "NOOP"); len(got) != 1 {
		t.Fatalf("change reported twice: %q", got)
	}
}

// TestFetchCacheBudget: the least recently used mailbox goes first; a
// mailbox that fills the budget alone takes no more entries; the budget
// is never exceeded; a fuller entry replaces a smaller one.
func TestFetchCacheBudget(t *testing.T) {
	ent := func(n int) *fetchEntry {
		return &fetchEntry{env: []byte("(" + strings.Repeat("x", n-entryOverhead-1))}
	}
	put := func(c *fetchCache, mb int64, from, to uint32) {
		var uids []uint32
		var ents []*fetchEntry
		for u := from; u <= to; u++ {
			uids = append(uids, u)
			ents = append(ents, ent(1000))
		}
		c.put(mb, uids, ents)
	}
	has := func(c *fetchCache, mb int64, uid uint32) bool {
		out := make([]*fetchEntry, 1)
		c.get(mb, []uint32{uid}, out)
		return out[0] != nil
	}
	c := newFetchCache(10 * 1000) // ten entries
	put(c, 1, 1, 4)
	put(c, 2, 1, 4)
	if !has(c, 1, 1) { // mailbox 1 is now the more recently used
		t.Fatal("mailbox 1 not cached")
	}
	put(c, 3, 1, 4) // needs room: mailbox 2 goes
	if has(c, 2, 1) || !has(c, 1, 4) || !has(c, 3, 4) {
		t.Fatalf("LRU eviction wrong: boxes %v", c.boxes)
	}
	if c.bytes > c.limit {
		t.Fatalf("%d bytes for a budget of %d", c.bytes, c.limit)
	}
	put(c, 4, 1, 20) // alone over the budget: everything else goes, then it is full
	if has(c, 1, 1) || has(c, 3, 1) || !has(c, 4, 10) || has(c, 4, 11) || !c.boxes[4].full {
		t.Fatalf("oversized mailbox handled wrong: %d bytes", c.bytes)
	}
	if c.bytes > c.limit {
		t.Fatalf("%d bytes for a budget of %d", c.bytes, c.limit)
	}
	// Replacing an entry with a larger one in a full cache is refused;
	// with room it is accepted and accounted.
	bigger := ent(1000)
	bigger.bs = []byte("(y)")
	c.put(4, []uint32{1}, []*fetchEntry{bigger})
	out := make([]*fetchEntry, 1)
	if c.get(4, []uint32{1}, out); out[0].bs != nil || c.bytes > c.limit {
		t.Fatalf("entry grew past the budget: %d bytes", c.bytes)
	}
	c2 := newFetchCache(10 * 1000)
	put(c2, 1, 1, 2)
	c2.put(1, []uint32{1}, []*fetchEntry{bigger})
	if c2.get(1, []uint32{1}, out); out[0] != bigger || c2.bytes != 2000+3 {
		t.Fatalf("replacement: %+v, %d bytes", out[0], c2.bytes)
	}
}
