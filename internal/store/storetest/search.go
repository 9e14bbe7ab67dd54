package storetest

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"pillarbox/internal/store"
)

// TextIndexer is implemented by backends that fill their full-text index
// after delivery. The suite then checks SearchText both before and after
// IndexPending (which indexes everything pending); others are checked
// once.
type TextIndexer interface {
	IndexPending(ctx context.Context) (int, error)
}

// Messages of the SearchText test, one property each.
var searchMessages = []struct{ name, msg string }{
	{"plain", "From: Jörg <j@example.org>\r\nSubject: Quarterly report\r\n\r\n" +
		"The numbers for Q3 are in.\r\nViele Grüße, Jörg\r\n"},
	{"base64", "Subject: encoded\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		"w5xuw69jw7Zkw6kgYmFzZTY0IHNlY3JldCBwYXlsb2Fk\r\n"}, // "Ünïcödé base64 secret payload"
	{"qp-latin1", "Subject: dessert\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Caf=E9 cr=E8me br=FBl=E9e for every=\r\nbody\r\n"},
	{"html", "Subject: newsletter\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
		"<html><head><style>.x{color:red}</style></head><body><p>Visit <b>our</b> &amp; shop</p>" +
		"<script>hiddenscript()</script></body></html>\r\n"},
	{"header-only", "Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=\r\nContent-Type: multipart/mixed; boundary=bb\r\n\r\n" +
		"--bb\r\nContent-Type: text/plain\r\n\r\nagenda attached\r\n" +
		"--bb\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"aW52aXNpYmxlIGluIGFuIGltYWdl\r\n--bb--\r\n"}, // "invisible in an image"
}

// testSearchText checks SearchText: BODY against TEXT, decoding, case
// folding, short substrings, expunged messages and copies; before and
// after indexing when the backend indexes asynchronously.
func testSearchText(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	inbox := e.mailbox(a.ID, "INBOX")
	uid := map[string]uint32{}
	for _, m := range searchMessages {
		res, err := st.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(m.msg)),
			Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte("Delivered-To: rcpt-" + m.name + "@example.com\r\n")}}})
		e.must(err)
		uid[m.name] = res.Local[0].UID
	}
	u := func(names ...string) []uint32 {
		var out []uint32
		for _, n := range names {
			out = append(out, uid[n])
		}
		slices.Sort(out)
		return out
	}
	everyone := u("plain", "base64", "qp-latin1", "html", "header-only")
	cases := []struct {
		field  store.TextField
		substr string
		want   []uint32
	}{
		{store.TextBody, "numbers for q3", u("plain")},
		{store.TextBody, "VIELE GRÜẞE", u("plain")}, // non-ASCII case folding (ẞ U+1E9E)
		{store.TextBody, "viele grüsse", nil},       // simple folding: ß is not ss
		{store.TextBody, "jÖRG", u("plain")},
		{store.TextBody, "ünÏcÖdÉ BASE64", u("base64")},
		{store.TextBody, "crème brûlée", u("qp-latin1")},
		{store.TextBody, "CAFÉ CRÈME", u("qp-latin1")},
		{store.TextBody, "everybody", u("qp-latin1")}, // soft line break
		{store.TextBody, "our & shop", u("html")},
		{store.TextBody, "<b>", nil},
		{store.TextBody, "hiddenscript", nil},
		{store.TextBody, "color:red", nil},
		{store.TextBody, "invisible", nil}, // an image is not text
		{store.TextBody, "agenda", u("header-only")},
		{store.TextBody, "café", u("qp-latin1")},
		{store.TextAll, "café", u("qp-latin1", "header-only")}, // RFC 2047 subject
		{store.TextBody, "meeting", nil},
		{store.TextAll, "CAFÉ MEETING", u("header-only")},
		{store.TextAll, "quarterly", u("plain")},
		{store.TextBody, "quarterly", nil},
		{store.TextAll, "rcpt-html@", u("html")}, // the per-recipient prefix
		{store.TextBody, "rcpt-html@", nil},
		{store.TextAll, "delivered-to: rcpt", everyone},
		{store.TextBody, "q3", u("plain")}, // short: no trigram
		{store.TextBody, "ü", u("plain", "base64")},
		{store.TextBody, "Ü", u("plain", "base64")},
		{store.TextAll, "é", u("base64", "qp-latin1", "header-only")},
		{store.TextBody, "", everyone},
		{store.TextAll, "no such text anywhere", nil},
		{store.TextBody, `"quoted" AND`, nil}, // FTS query syntax is only text
	}
	check := func(when string) {
		e.t.Helper()
		for _, tc := range cases {
			got, err := st.SearchText(ctx, inbox.ID, tc.field, tc.substr)
			e.must(err)
			if !slices.Equal(got, tc.want) {
				e.t.Errorf("%s: SearchText(%d, %q) = %v, want %v", when, tc.field, tc.substr, got, tc.want)
			}
		}
	}
	check("before indexing")
	ix, indexes := st.(TextIndexer)
	if indexes {
		_, err := ix.IndexPending(ctx)
		e.must(err)
		check("after indexing")
	}

	// Expunged messages are not found; copies are, in their mailbox.
	_, err := st.Expunge(ctx, inbox.ID, []uint32{uid["plain"]})
	e.must(err)
	got, err := st.SearchText(ctx, inbox.ID, store.TextBody, "numbers for q3")
	e.must(err)
	if len(got) != 0 {
		e.t.Errorf("expunged message found: %v", got)
	}
	dst, err := st.CreateMailbox(ctx, a.ID, "Copies", "")
	e.must(err)
	pairs, err := st.Copy(ctx, inbox.ID, []uint32{uid["html"], uid["base64"]}, dst.ID)
	e.must(err)
	if len(pairs) != 2 || pairs[0].Src != uid["base64"] || pairs[1].Src != uid["html"] {
		e.t.Fatalf("Copy pairs = %v", pairs)
	}
	fresh := e.deliver(a.ID, "Copies", "Subject: fresh\r\n\r\nour & shop, delivered last\r\n")
	for round := 0; round < 2; round++ {
		// A copy shares its blob (indexed or not) with the original.
		got, err = st.SearchText(ctx, dst.ID, store.TextBody, "OUR & SHOP")
		e.must(err)
		if !slices.Equal(got, []uint32{pairs[1].Dst, fresh.UID}) {
			e.t.Errorf("round %d: copies: SearchText = %v, pairs %v, fresh %d", round, got, pairs, fresh.UID)
		}
		got, err = st.SearchText(ctx, dst.ID, store.TextAll, "rcpt-html@example")
		e.must(err)
		if !slices.Equal(got, []uint32{pairs[1].Dst}) {
			e.t.Errorf("round %d: copied prefix: SearchText = %v, pairs %v", round, got, pairs)
		}
		if !indexes {
			break
		}
		_, err = ix.IndexPending(ctx)
		e.must(err)
	}
	got, err = st.SearchText(ctx, inbox.ID, store.TextBody, "fresh")
	e.must(err)
	if len(got) != 0 {
		e.t.Errorf("message of another mailbox found: %v", got)
	}
	_, err = st.SearchText(ctx, dst.ID+1000, store.TextBody, "x")
	e.wantErr(err, store.ErrNotFound, "SearchText in unknown mailbox")
}

// testSearchTextLarge: a large message (the backend may store it
// differently) with the match far into its text.
func testSearchTextLarge(e *env) {
	a := e.account("user@example.com")
	big := "Subject: big\r\n\r\n" + strings.Repeat("filler line of text 0123456789\r\n", 8000) + "NEEDLE at the end\r\n"
	r := e.deliver(a.ID, "INBOX", big)
	e.deliver(a.ID, "INBOX", body("small"))
	for round := 0; round < 2; round++ {
		got, err := e.st.SearchText(e.ctx, r.MailboxID, store.TextBody, "needle AT")
		e.must(err)
		if !slices.Equal(got, []uint32{r.UID}) {
			e.t.Errorf("round %d: SearchText in large message = %v", round, got)
		}
		ix, ok := e.st.(TextIndexer)
		if !ok {
			break
		}
		_, err = ix.IndexPending(e.ctx)
		e.must(err)
	}
}

// testDeliverNoCreate: LocalRecipient.NoCreate refuses a missing mailbox
// with ErrNotFound and stores nothing; an existing one works.
func testDeliverNoCreate(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	_, err := st.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(body("n"))),
		Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "Missing", NoCreate: true}}})
	e.wantErr(err, store.ErrNotFound, "Deliver NoCreate to a missing mailbox")
	_, err = st.Mailbox(ctx, a.ID, "Missing")
	e.wantErr(err, store.ErrNotFound, "mailbox after NoCreate delivery")
	// In a batch: all or nothing.
	_, err = st.DeliverBatch(ctx, []*store.Delivery{
		{Blob: bytes.NewReader([]byte(body("1"))), Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX", NoCreate: true}}},
		{Blob: bytes.NewReader([]byte(body("2"))), Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "Missing/Child", NoCreate: true}}},
	})
	e.wantErr(err, store.ErrNotFound, "DeliverBatch with a missing NoCreate mailbox")
	if mb := e.mailbox(a.ID, "INBOX"); mb.Messages != 0 || mb.UIDNext != 1 {
		e.t.Errorf("INBOX after failed batch: %+v", mb)
	}
	// Existing mailboxes (any INBOX spelling) and the default still work.
	res, err := st.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(body("ok"))),
		Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "inbox", NoCreate: true}, {AccountID: a.ID, Mailbox: "Sent", NoCreate: true}}})
	e.must(err)
	if len(res.Local) != 2 || res.Local[0].UID != 1 || res.Local[1].UID != 1 {
		e.t.Errorf("NoCreate delivery to existing mailboxes = %+v", res)
	}
	e.deliver(a.ID, "Missing", body("created"))
	if mb := e.mailbox(a.ID, "Missing"); mb.Messages != 1 {
		e.t.Errorf("default delivery did not create the mailbox: %+v", mb)
	}
	e.checkCounts(a.ID)
}
