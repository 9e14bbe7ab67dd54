package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The generator: message i of seed s is a pure function of (s, i), so
// every server, account and run sees byte-identical mail and the expected
// SEARCH counts follow from the index alone (query.hit).
//
// Content: ~65% text/plain (7bit, quoted-printable with UTF-8, or
// base64), ~15% multipart/alternative (plain + HTML), ~20%
// multipart/mixed with one or two base64 attachments. Sizes are
// log-uniform between 2 KiB and 50 KiB (mean ~15 KiB). Text is drawn
// from vocab, which holds none of the needles below; needles are placed
// by index so each query hits a known set of messages.

// query is one SEARCH of the benchmark with the predicate deciding which
// messages it matches.
type query struct {
	Key  string // SEARCH key: BODY, SUBJECT or FROM
	Text string
	hit  func(i int) bool
}

// String is the SEARCH criteria as sent.
func (q query) String() string { return q.Key + ` "` + q.Text + `"` }

// expected counts the messages in [0, n) that q matches.
func (q query) expected(n int) int {
	c := 0
	for i := 0; i < n; i++ {
		if q.hit(i) {
			c++
		}
	}
	return c
}

func every(mod, rem int) func(int) bool { return func(i int) bool { return i%mod == rem } }
func never(int) bool                    { return false }

// bodyQueries are placed in the text (and HTML) part of the body.
var bodyQueries = []query{
	{"BODY", "aardvark", every(3, 0)},
	{"BODY", "hippocampus", every(20, 3)},
	{"BODY", "quarterly forecast", every(7, 2)}, // a phrase: both words on one line
	{"BODY", "zeppelin", every(250, 11)},
	{"BODY", "xylographer", never},
}

// headerQueries: SUBJECT needles in the Subject (some RFC 2047
// B-encoded, so a server has to decode to find them) and FROM on the
// From address.
var headerQueries = []query{
	{"SUBJECT", "invoice", every(10, 0)},
	{"SUBJECT", "outage", every(50, 7)},
	{"SUBJECT", "kerfuffle", never},
	{"FROM", "olivia.hughes", func(i int) bool { return senderOf(i).addr == "olivia.hughes@example.org" }},
	{"FROM", "example.net", func(i int) bool { return strings.HasSuffix(senderOf(i).addr, "@example.net") }},
	{"FROM", "Tanaka", func(i int) bool { return strings.Contains(senderOf(i).name, "Tanaka") }},
}

type person struct{ name, addr string }

// senders: 37 (prime, so the sender does not follow other index moduli).
var senders = func() []person {
	first := []string{"Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sofia", "Mateo",
		"Yuki", "Arjun", "Chloe", "Lucas", "Ingrid", "Kwame", "Mei", "Diego", "Hana",
		"Tomas", "Aisha", "Felix", "Nora", "Ravi", "Elena", "Jonas", "Priya", "Omar",
		"Greta", "Samuel", "Leila", "Pavel", "Zara", "Hugo", "Maya", "Ken", "Freya", "Ivan", "Lena"}
	last := []string{"Hughes", "Garcia", "Tanaka", "Okafor", "Schmidt", "Rossi", "Novak",
		"Silva", "Kowalski", "Dubois", "Larsen", "Haddad", "Moreau", "Fischer", "Ito"}
	domains := []string{"example.org", "example.net", "example.com", "mail.example.edu"}
	out := make([]person, len(first))
	for k, f := range first {
		l := last[k%len(last)]
		if k == 0 {
			l = "Hughes"
		}
		out[k] = person{f + " " + l, strings.ToLower(f+"."+l) + "@" + domains[(k*7)%len(domains)]}
	}
	out[0].addr = "olivia.hughes@example.org"
	return out
}()

func senderOf(i int) person { return senders[i%len(senders)] }

// vocab: ordinary words, none containing a needle.
var vocab = strings.Fields(`the of and to in is that for it as with was on be by at this
have from or one had not but what all were when we there can an your which their said if do
will each about how up out them then she many some so these would other into has more her two
like him see time could no make than first been its who now people my made over did down only
way find use may water long little very after words called just where most know get through back
much before go good new write our used me man too any day same right look think also around
another came come work three word must because does part even place well such here take why
things help put years different away again off went old number great tell men say small every
found still between name should home big give air line set own under read last never us left end
along while might next sound below saw something thought both few those always looked show large
often together asked house world going want school important until form food keep children feet
land side without boy once animals life enough took sometimes four head above kind began almost
live page got earth need far hand high year mother light parts country father let night following
picture being study second eyes soon times story boys since white days ever paper hard near
sentence better best across during today others however sure means knew try told young miles sun
ways thing whole hear example heard several change answer room sea against top turned learn point
city play toward five using himself usually project budget release schedule report review draft
server cluster backup network storage ticket customer contract shipment delivery agenda minutes
travel expense approval roadmap milestone feedback survey launch design vendor license renewal`)

// utf8Words go into quoted-printable and base64 text parts.
var utf8Words = []string{"café", "naïve", "über", "façade", "résumé", "Zürich", "smörgåsbord", "piñata", "crème", "jalapeño"}

var topics = []string{"Project update", "Weekly report", "Team lunch", "Budget review", "Release notes",
	"Design feedback", "Travel plans", "Server maintenance", "Contract renewal", "Customer ticket",
	"Meeting agenda", "Holiday schedule", "Roadmap draft", "Vendor license", "Backup status"}

var mailers = []string{"Thunderbird 115.6.0", "Apple Mail (2.3774)", "Microsoft Outlook 16.0",
	"K-9 Mail for Android", "Mutt/2.2.9", "Roundcube Webmail/1.6.5"}

func init() {
	all := []query{}
	all = append(all, bodyQueries...)
	all = append(all, headerQueries...)
	for _, q := range all {
		if q.Key == "FROM" {
			continue
		}
		for _, part := range strings.Fields(strings.ToLower(q.Text)) {
			for _, w := range append(append(append([]string{}, vocab...), topics...), utf8Words...) {
				if strings.Contains(strings.ToLower(w), part) {
					panic(fmt.Sprintf("imapload: vocabulary word %q collides with needle %q", w, q.Text))
				}
			}
		}
	}
}

// genMessage returns message i of the given seed with LF line endings,
// its date and its Maildir info flags.
func genMessage(seed uint64, i int) (msg []byte, date time.Time, flags string) {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	zones := []int{0, 3600, 7200, -5 * 3600, -8 * 3600, 9 * 3600, 19800}
	base := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)
	date = base.Add(time.Duration(i)*47*time.Minute + time.Duration(rng.IntN(40*60))*time.Second)
	date = date.In(time.FixedZone("", zones[rng.IntN(len(zones))]))
	target := int(2048 * math.Pow(25, rng.Float64())) // log-uniform 2 KiB .. 50 KiB

	var needles []string
	for _, q := range bodyQueries {
		if q.hit(i) {
			needles = append(needles, q.Text)
		}
	}
	var h bytes.Buffer
	writeHeaders(&h, rng, seed, i, date)

	var b bytes.Buffer
	switch k := rng.IntN(100); {
	case k < 65:
		enc := []string{"7bit", "7bit", "7bit", "quoted-printable", "base64"}[rng.IntN(5)]
		writeTextPart(&h, &b, rng, enc, target-h.Len(), needles)
	case k < 80:
		bd := fmt.Sprintf("=_alt_%d_%x", i, rng.Uint32())
		fmt.Fprintf(&h, "Content-Type: multipart/alternative; boundary=\"%s\"\n", bd)
		b.WriteString("This is a multi-part message in MIME format.\n\n--" + bd + "\n")
		text := words(rng, max(200, (target-h.Len())/2), needles, true)
		writePart(&b, "text/plain; charset=UTF-8", "quoted-printable", "", []byte(text))
		b.WriteString("\n--" + bd + "\n")
		writePart(&b, "text/html; charset=UTF-8", "quoted-printable", "", []byte(toHTML(text)))
		b.WriteString("\n--" + bd + "--\n")
	default:
		bd := fmt.Sprintf("=_mix_%d_%x", i, rng.Uint32())
		fmt.Fprintf(&h, "Content-Type: multipart/mixed; boundary=\"%s\"\n", bd)
		b.WriteString("This is a multi-part message in MIME format.\n\n--" + bd + "\n")
		text := words(rng, 300+rng.IntN(1500), needles, false)
		writePart(&b, "text/plain; charset=UTF-8", "7bit", "", []byte(text))
		rest := max(512, target-h.Len()-b.Len()-400)
		nAtt := 1 + rng.IntN(2)
		for a := 0; a < nAtt; a++ {
			raw := make([]byte, rest*3/4/nAtt)
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			name, ctype := attachmentName(rng, i, a)
			b.WriteString("\n--" + bd + "\n")
			writePart(&b, ctype+"; name=\""+name+"\"", "base64", name, raw)
		}
		b.WriteString("\n--" + bd + "--\n")
	}
	h.WriteString("\n")
	h.Write(b.Bytes())

	flags = ""
	if i%17 == 0 {
		flags += "R" // \Answered
	}
	if i%10 < 7 {
		flags += "S" // \Seen
	}
	return h.Bytes(), date, flags
}

func writeHeaders(h *bytes.Buffer, rng *rand.Rand, seed uint64, i int, date time.Time) {
	from := senderOf(i)
	fmt.Fprintf(h, "Return-Path: <%s>\n", from.addr)
	fmt.Fprintf(h, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mx.bench.test with ESMTPS id %08x\n\tfor <team@bench.test>; %s\n",
		rng.IntN(9), domainOf(from.addr), rng.IntN(9), domainOf(from.addr), 1+rng.IntN(250), rng.Uint32(),
		date.Add(5*time.Second).Format(time.RFC1123Z))
	fmt.Fprintf(h, "Received: from [198.51.100.%d] by mx%d.%s with ESMTPSA; %s\n",
		1+rng.IntN(250), rng.IntN(9), domainOf(from.addr), date.Add(2*time.Second).Format(time.RFC1123Z))
	fmt.Fprintf(h, "Message-ID: <%d.%x.%d@%s>\n", i, rng.Uint64(), seed, domainOf(from.addr))
	fmt.Fprintf(h, "Date: %s\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(h, "From: \"%s\" <%s>\n", from.name, from.addr)
	to := []string{"Bench Team <team@bench.test>"}
	for k := rng.IntN(3); k > 0; k-- {
		p := senders[rng.IntN(len(senders))]
		to = append(to, fmt.Sprintf("\"%s\" <%s>", p.name, p.addr))
	}
	fmt.Fprintf(h, "To: %s\n", strings.Join(to, ",\n "))
	if rng.IntN(4) == 0 {
		p := senders[rng.IntN(len(senders))]
		fmt.Fprintf(h, "Cc: %s <%s>\n", p.name, p.addr)
	}
	fmt.Fprintf(h, "Subject: %s\n", subject(rng, i))
	if rng.IntN(3) == 0 {
		ref := fmt.Sprintf("<%d.%x@%s>", i/2, rng.Uint64(), domainOf(from.addr))
		fmt.Fprintf(h, "In-Reply-To: %s\nReferences: %s\n", ref, ref)
	}
	fmt.Fprintf(h, "X-Mailer: %s\n", mailers[rng.IntN(len(mailers))])
	if rng.IntN(5) == 0 {
		fmt.Fprintf(h, "List-Id: Bench discussion <bench-%d.lists.example.org>\n", rng.IntN(4))
	}
	h.WriteString("MIME-Version: 1.0\n")
}

func domainOf(a string) string { return a[strings.IndexByte(a, '@')+1:] }

// subject carries the SUBJECT needles; every 13th and every 30th subject
// (a third of the "invoice" ones) is RFC 2047 B-encoded UTF-8.
func subject(rng *rand.Rand, i int) string {
	s := topics[rng.IntN(len(topics))]
	for _, q := range headerQueries {
		if q.Key == "SUBJECT" && q.hit(i) {
			s = fmt.Sprintf("%s %d: %s", strings.ToUpper(q.Text[:1])+q.Text[1:], 1000+i, s)
		}
	}
	if rng.IntN(4) == 0 {
		s = "Re: " + s
	}
	if i%13 == 5 || i%30 == 0 {
		return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(s+" — "+utf8Words[i%len(utf8Words)])) + "?="
	}
	return s
}

// words returns roughly n bytes of text lines (<= 60 columns, a needle
// may lengthen its line to ~80) with each needle put once at the start of
// a random line. utf8 mixes in non-ASCII words.
func words(rng *rand.Rand, n int, needles []string, utf8 bool) string {
	var lines []string
	var line strings.Builder
	size := 0
	for size < n {
		var w string
		if utf8 && rng.IntN(25) == 0 {
			w = utf8Words[rng.IntN(len(utf8Words))]
		} else {
			w = vocab[rng.IntN(len(vocab))]
		}
		if line.Len() > 0 && line.Len()+1+len(w) > 60 {
			lines = append(lines, line.String())
			size += line.Len() + 1
			line.Reset()
			if rng.IntN(6) == 0 {
				lines = append(lines, "")
			}
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	lines = append(lines, line.String())
	for _, nd := range needles {
		k := rng.IntN(len(lines))
		lines[k] = strings.TrimSpace(nd + " " + lines[k])
	}
	return strings.Join(lines, "\n") + "\n"
}

func toHTML(text string) string {
	var b strings.Builder
	b.WriteString("<html><head><meta charset=\"utf-8\"></head><body>\n")
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if l == "" {
			continue
		}
		b.WriteString("<p>" + l + "</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// writeTextPart writes a single-part text/plain message: its MIME
// headers to h, the encoded text to b.
func writeTextPart(h, b *bytes.Buffer, rng *rand.Rand, enc string, n int, needles []string) {
	utf8 := enc != "7bit"
	text := words(rng, max(200, n), needles, utf8)
	cs := "us-ascii"
	if utf8 {
		cs = "UTF-8"
	}
	fmt.Fprintf(h, "Content-Type: text/plain; charset=%s\nContent-Transfer-Encoding: %s\n", cs, enc)
	b.Write(encodeBody(enc, []byte(text)))
}

// writePart writes a body part with its MIME headers (the headers of a
// top-level single part are written by the caller).
func writePart(b *bytes.Buffer, ctype, enc, filename string, body []byte) {
	fmt.Fprintf(b, "Content-Type: %s\nContent-Transfer-Encoding: %s\n", ctype, enc)
	if filename != "" {
		fmt.Fprintf(b, "Content-Disposition: attachment; filename=\"%s\"\n", filename)
	}
	b.WriteString("\n")
	b.Write(encodeBody(enc, body))
}

func encodeBody(enc string, body []byte) []byte {
	switch enc {
	case "base64":
		s := base64.StdEncoding.EncodeToString(body)
		var out bytes.Buffer
		for len(s) > 76 {
			out.WriteString(s[:76] + "\n")
			s = s[76:]
		}
		out.WriteString(s + "\n")
		return out.Bytes()
	case "quoted-printable":
		return qpEncode(body)
	}
	return body
}

// qpEncode encodes line by line with soft breaks at 75 columns; needles
// start their line (see words), so no soft break splits one.
func qpEncode(body []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
		col := 0
		for k, c := range line {
			var s string
			switch {
			case c == '=' || c > 126 || (c == ' ' && k == len(line)-1):
				s = fmt.Sprintf("=%02X", c)
			default:
				s = string(c)
			}
			if col+len(s) > 75 {
				out.WriteString("=\n")
				col = 0
			}
			out.WriteString(s)
			col += len(s)
		}
		out.WriteString("\n")
	}
	return out.Bytes()
}

func attachmentName(rng *rand.Rand, i, a int) (name, ctype string) {
	switch rng.IntN(3) {
	case 0:
		return fmt.Sprintf("report-%d-%d.pdf", i, a), "application/pdf"
	case 1:
		return fmt.Sprintf("photo_%d_%d.jpg", i, a), "image/jpeg"
	}
	return fmt.Sprintf("data-%d-%d.zip", i, a), "application/zip"
}
