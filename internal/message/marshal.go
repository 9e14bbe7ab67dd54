package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Storage format, version 1 (all integers are Go varints, strings are a
// uvarint length followed by the bytes):
//
//	message  = version(1 byte = 1) part
//	part     = uvarint(HeaderStart) varint(BodyStart-HeaderStart)
//	           varint(End-BodyStart) varint(Lines)
//	           str(Type) str(Subtype) params str(ID) str(Description)
//	           str(Encoding) str(MD5) str(Disposition) params(DispParams)
//	           strs(Language) str(Location) envelope uvarint(n) n*part
//	params   = uvarint(n) n*(str(Name) str(Value))
//	strs     = uvarint(n) n*str
//	envelope = 0x00 (none) / 0x01 str(Date) str(Subject) 6*addrs
//	           str(InReplyTo) str(MessageID)
//	addrs    = uvarint(n) n*(str(Name) str(ADL) str(Mailbox) str(Host))
//
// Empty lists decode as nil, which is what Parse produces.
const formatVersion = 1

// maxUnmarshalDepth bounds the part tree UnmarshalPart accepts (Parse
// produces at most MaxDepth levels).
const maxUnmarshalDepth = 2 * MaxDepth

var errCorrupt = errors.New("message: corrupt structure")

// MarshalBinary encodes the part tree for storage (see the format above).
func (p *Part) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, formatVersion)
	return p.appendBinary(b), nil
}

func (p *Part) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(p.HeaderStart))
	b = binary.AppendVarint(b, p.BodyStart-p.HeaderStart)
	b = binary.AppendVarint(b, p.End-p.BodyStart)
	b = binary.AppendVarint(b, p.Lines)
	for _, s := range []string{p.Type, p.Subtype} {
		b = appendStr(b, s)
	}
	b = appendParamsBin(b, p.Params)
	for _, s := range []string{p.ID, p.Description, p.Encoding, p.MD5, p.Disposition} {
		b = appendStr(b, s)
	}
	b = appendParamsBin(b, p.DispParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, s := range p.Language {
		b = appendStr(b, s)
	}
	b = appendStr(b, p.Location)
	if e := p.Env; e == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendStr(b, e.Date)
		b = appendStr(b, e.Subject)
		for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
			b = binary.AppendUvarint(b, uint64(len(l)))
			for _, a := range l {
				b = appendStr(appendStr(appendStr(appendStr(b, a.Name), a.ADL), a.Mailbox), a.Host)
			}
		}
		b = appendStr(b, e.InReplyTo)
		b = appendStr(b, e.MessageID)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Parts)))
	for _, c := range p.Parts {
		b = c.appendBinary(b)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendParamsBin(b []byte, params []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(params)))
	for _, p := range params {
		b = appendStr(appendStr(b, p.Name), p.Value)
	}
	return b
}

// UnmarshalPart decodes what MarshalBinary produced. It returns an error,
// never panics, on corrupt or unknown-version input.
func UnmarshalPart(b []byte) (*Part, error) {
	if len(b) == 0 {
		return nil, errCorrupt
	}
	if b[0] != formatVersion {
		return nil, fmt.Errorf("message: unknown structure version %d", b[0])
	}
	d := &decoder{b: b[1:]}
	p := d.part(0)
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errCorrupt
	}
	return p, nil
}

// decoder reads the storage format; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a list length; every element takes at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) params() []Param {
	var ps []Param
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		ps = append(ps, Param{Name: d.str(), Value: d.str()})
	}
	return ps
}

func (d *decoder) addrs() []Address {
	var l []Address
	for n := d.count(4); n > 0 && d.err == nil; n-- {
		l = append(l, Address{Name: d.str(), ADL: d.str(), Mailbox: d.str(), Host: d.str()})
	}
	return l
}

func (d *decoder) part(depth int) *Part {
	if depth > maxUnmarshalDepth {
		d.fail()
		return nil
	}
	p := &Part{}
	p.HeaderStart = int64(d.uvarint())
	p.BodyStart = p.HeaderStart + d.varint()
	p.End = p.BodyStart + d.varint()
	p.Lines = d.varint()
	p.Type, p.Subtype = d.str(), d.str()
	p.Params = d.params()
	p.ID, p.Description, p.Encoding, p.MD5, p.Disposition = d.str(), d.str(), d.str(), d.str(), d.str()
	p.DispParams = d.params()
	for n := d.count(1); n > 0 && d.err == nil; n-- {
		p.Language = append(p.Language, d.str())
	}
	p.Location = d.str()
	if len(d.b) == 0 {
		d.fail()
		return nil
	}
	hasEnv := d.b[0]
	d.b = d.b[1:]
	switch hasEnv {
	case 0:
	case 1:
		e := &Envelope{Date: d.str(), Subject: d.str()}
		e.From, e.Sender, e.ReplyTo = d.addrs(), d.addrs(), d.addrs()
		e.To, e.Cc, e.Bcc = d.addrs(), d.addrs(), d.addrs()
		e.InReplyTo, e.MessageID = d.str(), d.str()
		p.Env = e
	default:
		d.fail()
		return nil
	}
	for n := d.count(1); n > 0 && d.err == nil; n-- {
		c := d.part(depth + 1)
		if c != nil {
			p.Parts = append(p.Parts, c)
		}
	}
	return p
}
