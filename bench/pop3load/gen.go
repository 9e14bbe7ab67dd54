package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The generator: message i of seed s is a pure function of (s, i), so
// both servers, every maildrop and every run see byte-identical mail, and
// the driver can tell which bytes each RETR must return without reading
// the Maildir.
//
// Sizes (the class follows from the index, so the mix is exact for any n):
//
//	i%200 == 199   0.5%   1-2 MiB      multipart/mixed, base64 attachment
//	i%20  == 7     5%     50-200 KiB   multipart/mixed, base64 attachment
//	i%10  == 3     10%    10-50 KiB    text/plain
//	otherwise      84.5%  2-10 KiB     text/plain
//
// log-uniform within each class: mean ~20 KiB, ~100 MB per 5,000
// messages. Line endings are CRLF. About one text line in forty starts
// with '.', and every tenth message has a line that is a lone "." (both
// must be dot-stuffed by RETR, RFC 1939 3).

// sizeClass is one row of the table above.
type sizeClass struct {
	name     string
	min, max int
	attach   bool
}

var classes = []sizeClass{
	{"2-10KiB", 2 << 10, 10 << 10, false},
	{"10-50KiB", 10 << 10, 50 << 10, false},
	{"50-200KiB", 50 << 10, 200 << 10, true},
	{"1-2MiB", 1 << 20, 2 << 20, true},
}

func classOf(i int) sizeClass {
	switch {
	case i%200 == 199:
		return classes[3]
	case i%20 == 7:
		return classes[2]
	case i%10 == 3:
		return classes[1]
	}
	return classes[0]
}

var vocab = strings.Fields(`the of and to in is that for it as with was on be by at this
have from or one had not but what all were when we there can an your which their said if do
will each about how up out them then many some so these would other into has more two like
see time could no make than first been its who now people made over did down only way find use
may water long little very after words called just where most know get through back much before
go good new write our used too any day same right look think also around another came come work
three word must because does part even place well such here take why things help put years
different away again off went old number great tell men say small every found still between
name should home big give air line set own under read last never left end along while might
next sound below saw something thought both few those always looked show large often together
project budget release schedule report review draft server cluster backup network storage
ticket customer contract shipment delivery agenda minutes travel expense approval roadmap
milestone feedback survey launch design vendor license renewal invoice quarterly forecast`)

// dotLines start with '.': they exercise dot-stuffing.
var dotLines = []string{".", "..", "...", ".net migration notes follow", ". indented by a dot",
	".hidden files are listed below", "..double dotted line", ".\t.tab after a dot", ".END"}

var names = []string{"Olivia Hughes", "Liam Garcia", "Emma Tanaka", "Noah Okafor", "Amelia Schmidt",
	"Oliver Rossi", "Sofia Novak", "Mateo Silva", "Yuki Kowalski", "Arjun Dubois", "Chloe Larsen"}

var baseDate = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// genDate is message i's Date: strictly increasing with i, so Maildir
// file names (which start with it) sort in index order.
func genDate(i int) time.Time { return baseDate.Add(time.Duration(i) * 7 * time.Minute) }

// genMessage returns message i of seed: CRLF line endings throughout.
func genMessage(seed uint64, i int) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	cl := classOf(i)
	target := logUniform(rng, cl.min, cl.max)
	b := bytes.NewBuffer(make([]byte, 0, target+4096))
	writeHeaders(b, rng, seed, i)
	if !cl.attach {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
		writeText(b, rng, i, target)
		return b.Bytes()
	}
	boundary := fmt.Sprintf("=_pop3bench_%d_%d", seed, i)
	fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	fmt.Fprintf(b, "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary)
	writeText(b, rng, i, b.Len()+1200+rng.IntN(2000))
	fmt.Fprintf(b, "\r\n--%s\r\nContent-Type: application/octet-stream; name=\"file%d.bin\"\r\n", boundary, i)
	fmt.Fprintf(b, "Content-Disposition: attachment; filename=\"file%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i)
	closing := fmt.Sprintf("\r\n--%s--\r\n", boundary)
	// base64: 57 raw bytes per 76-character line (78 with CRLF).
	lines := max(1, (target-b.Len()-len(closing))/78)
	writeBase64(b, rng, lines)
	b.WriteString(closing[2:]) // writeBase64 ends with CRLF
	return b.Bytes()
}

func logUniform(rng *rand.Rand, lo, hi int) int {
	return int(math.Exp(math.Log(float64(lo)) + rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
}

func writeHeaders(b *bytes.Buffer, rng *rand.Rand, seed uint64, i int) {
	date := genDate(i)
	from := names[i%len(names)]
	to := names[(i*7+3)%len(names)]
	addr := func(n string) string { return strings.ToLower(strings.ReplaceAll(n, " ", ".")) + "@example.org" }
	fmt.Fprintf(b, "Return-Path: <%s>\r\n", addr(from))
	fmt.Fprintf(b, "Received: from mail.example.org (mail.example.org [192.0.2.%d])\r\n\tby mx.bench.test with ESMTPS id %016x\r\n\tfor <%s>; %s\r\n",
		1+i%250, rng.Uint64(), addr(to), date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: %s <%s>\r\nTo: %s <%s>\r\n", from, addr(from), to, addr(to))
	fmt.Fprintf(b, "Subject: %s %s (#%d)\r\n", pick(rng), pick(rng), i)
	fmt.Fprintf(b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Message-ID: <%d.%d.%x@example.org>\r\nMIME-Version: 1.0\r\n", seed, i, rng.Uint32())
}

func pick(rng *rand.Rand) string { return vocab[rng.IntN(len(vocab))] }

// writeText appends text lines (at most 78 characters before CRLF) until
// b holds about target bytes: words, paragraph breaks, and lines starting
// with '.'. Every tenth message gets a lone "." line.
func writeText(b *bytes.Buffer, rng *rand.Rand, i, target int) {
	lone := i%10 == 0
	for b.Len() < target || lone {
		switch r := rng.IntN(40); {
		case r == 0 || lone:
			if lone {
				b.WriteString(".\r\n")
				lone = false
			} else {
				b.WriteString(dotLines[rng.IntN(len(dotLines))])
				b.WriteString("\r\n")
			}
		case r < 4:
			b.WriteString("\r\n")
		default:
			n := 0
			for n < 60 {
				w := pick(rng)
				if n > 0 {
					b.WriteByte(' ')
					n++
				}
				b.WriteString(w)
				n += len(w)
			}
			b.WriteString("\r\n")
		}
	}
}

// writeBase64 appends lines of base64 of pseudo-random bytes.
func writeBase64(b *bytes.Buffer, rng *rand.Rand, lines int) {
	var raw [57]byte
	var enc [76]byte
	for k := 0; k < lines; k++ {
		for j := 0; j < len(raw); j += 8 {
			v := rng.Uint64()
			for x := 0; x < 8 && j+x < len(raw); x++ {
				raw[j+x] = byte(v >> (8 * x))
			}
		}
		base64.StdEncoding.Encode(enc[:], raw[:])
		b.Write(enc[:])
		b.WriteString("\r\n")
	}
}

// digest identifies a message's octets: its size and CRC-32C.
type digest struct {
	size int
	crc  uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func digestOf(msg []byte) digest { return digest{len(msg), crc32.Checksum(msg, castagnoli)} }

// expected returns the digests of messages 0..n-1 of seed (a multiset:
// message -> count) and their total size.
func expected(seed uint64, n int) (map[digest]int, int64) {
	m := make(map[digest]int, n)
	var total int64
	for i := 0; i < n; i++ {
		msg := genMessage(seed, i)
		m[digestOf(msg)]++
		total += int64(len(msg))
	}
	return m, total
}
