// Package message parses RFC 5322 / MIME (RFC 2045-2049) messages leniently
// and records, per MIME part, byte offsets and everything IMAP FETCH needs
// (ENVELOPE, BODYSTRUCTURE, BODY[section]) so a stored message never has to
// be parsed again.
//
// Parse streams from an io.ReaderAt: memory stays bounded whatever the
// message size (lines are never held whole; kept header values are capped
// per field and per message), nesting is bounded (MaxDepth) and so is the
// number of parts (MaxParts). Parse fails only on I/O errors: malformed input
// yields a best-effort tree.
//
// Part tree model:
//   - The root Part is the whole message: HeaderStart is 0, End is the
//     message size, Env holds its ENVELOPE, and Type/Subtype/... describe
//     its body.
//   - A multipart part has one child per body part (RFC 2046 5.1), in order.
//     A multipart without a usable boundary, without any body part, or past
//     the limits gets one synthesised text/plain child spanning its whole
//     body, so every multipart has at least one child (IMAP needs one).
//   - A message/rfc822 (or message/global, RFC 6532) part has exactly one
//     child: the encapsulated message, whose HeaderStart is the parent's
//     BodyStart and whose End is the parent's End, carrying Env.
//   - Offsets: [HeaderStart, BodyStart) is the header including the blank
//     line that ends it; [BodyStart, End) is the body. The line break before
//     a boundary delimiter belongs to the delimiter (RFC 2046 5.1.1), so it
//     is not part of the body.
//   - Type, Subtype, parameter names, Encoding and Disposition are lower
//     case; parameter values and other header values are kept as written
//     (unfolded, trimmed, RFC 2047 encoded words left encoded, as IMAP wants).
//
// Storage format (MarshalBinary): one version byte (currently 1) followed by
// the part tree, depth first, as varints and length-prefixed strings; see
// marshal.go. UnmarshalPart(MarshalBinary(p)) is deeply equal to p.
package message

import (
	"io"
)

// Limits of Parse.
const (
	MaxDepth       = 64       // nesting of parts (multipart and message/rfc822 levels)
	MaxParts       = 10000    // parts in one message
	maxFieldBytes  = 64 << 10 // kept bytes of one header field value
	maxKeptBytes   = 1 << 20  // kept header bytes in one message (all parts)
	maxBoundaryLen = 200      // longer boundaries are not recognised (RFC 2046 allows 70)
)

// Param is one MIME parameter (RFC 2045 5.1).
type Param struct {
	Name  string // lower case
	Value string // unquoted, otherwise as written (RFC 2231 forms not decoded)
}

// Part is one MIME part with byte offsets into the whole message. See the
// package comment for the tree model.
type Part struct {
	HeaderStart int64 // offset of the first header byte
	BodyStart   int64 // offset of the first body byte
	End         int64 // offset just past the last body byte
	Lines       int64 // lines in the body (a last line without a line break counts)

	Type        string  // e.g. "text"; "text" when absent or invalid
	Subtype     string  // e.g. "plain"
	Params      []Param // Content-Type parameters, in order
	ID          string  // Content-ID
	Description string  // Content-Description
	Encoding    string  // Content-Transfer-Encoding, "7bit" when absent
	MD5         string  // Content-MD5
	Disposition string  // Content-Disposition value, "" when absent
	DispParams  []Param // Content-Disposition parameters
	Language    []string
	Location    string // Content-Location

	// Env is set on the root and on each encapsulated message (the child
	// of a message/rfc822 part).
	Env *Envelope

	Parts []*Part
}

// Size is the body size in octets (IMAP body-fld-octets).
func (p *Part) Size() int64 { return p.End - p.BodyStart }

// IsMultipart reports whether p is a multipart part.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" }

// IsMessage reports whether p encapsulates a message (message/rfc822 or
// message/global with a parsed child).
func (p *Part) IsMessage() bool {
	return p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") && len(p.Parts) == 1
}

// Envelope returns the ENVELOPE of the message p stands for: p's own for the
// root or an encapsulated message, the encapsulated message's for a
// message/rfc822 part, and nil for other parts.
func (p *Part) Envelope() *Envelope {
	if p.Env != nil {
		return p.Env
	}
	if p.IsMessage() {
		return p.Parts[0].Env
	}
	return nil
}

// Param returns the value of the Content-Type parameter name (lower case),
// decoded (RFC 2231 continuations and charsets, RFC 2047 words), or "".
func (p *Part) Param(name string) string { return DecodeParam(p.Params, name) }

// FileName returns the decoded file name: the Content-Disposition filename
// parameter, else the Content-Type name parameter, else "".
func (p *Part) FileName() string {
	if s := DecodeParam(p.DispParams, "filename"); s != "" {
		return s
	}
	return DecodeParam(p.Params, "name")
}

// Find returns the part named by an IMAP section part specifier (RFC 9051
// 6.4.5), e.g. []int{2, 1} for "2.1"; nil or empty returns p itself. It
// returns nil when there is no such part. For a message/rfc822 part, the
// next number selects in the encapsulated message's body; for a part that
// is not multipart, 1 selects the part itself. For section.HEADER and
// section.TEXT of a message/rfc822 part q, use q.Parts[0] (the
// encapsulated message); section.MIME is q's own header.
func (p *Part) Find(section []int) *Part {
	cur := p
	for i, n := range section {
		if i > 0 && cur.IsMessage() {
			cur = cur.Parts[0]
		}
		switch {
		case cur.IsMultipart():
			if n < 1 || n > len(cur.Parts) {
				return nil
			}
			cur = cur.Parts[n-1]
		case n == 1:
		default:
			return nil
		}
	}
	return cur
}

// Parse parses the message of size bytes in r. It fails only on I/O errors,
// never on malformed input. See the package comment for the tree it builds.
func Parse(r io.ReaderAt, size int64) (*Part, error) {
	ps := &parser{
		sc:     newScanner(io.NewSectionReader(r, 0, size), size),
		budget: maxKeptBytes,
	}
	p, err := ps.parsePart(0, false, true)
	if err != nil {
		return nil, err
	}
	return p, nil
}
