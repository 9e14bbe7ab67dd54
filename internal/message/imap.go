package message

import (
	"strconv"
	"strings"
)

// BodyStructure renders p in IMAP syntax (RFC 9051 7.5.2, RFC 3501 7.4.2):
// with extended, the BODYSTRUCTURE form including extension data (MD5,
// disposition, language, location; for multiparts the parameters); without,
// the non-extensible BODY form. Call it on the root for FETCH BODYSTRUCTURE.
func (p *Part) BodyStructure(extended bool) []byte {
	return p.AppendBodyStructure(nil, extended)
}

// AppendBodyStructure appends BodyStructure(extended) to dst.
func (p *Part) AppendBodyStructure(dst []byte, extended bool) []byte {
	dst = append(dst, '(')
	if p.IsMultipart() && len(p.Parts) > 0 {
		for _, c := range p.Parts {
			dst = c.AppendBodyStructure(dst, extended)
		}
		dst = append(dst, ' ')
		dst = appendString(dst, p.Subtype)
		if extended {
			dst = append(dst, ' ')
			dst = appendParams(dst, p.Params)
			dst = p.appendExt(dst)
		}
		return append(dst, ')')
	}
	dst = appendString(dst, p.Type)
	dst = append(dst, ' ')
	dst = appendString(dst, p.Subtype)
	dst = append(dst, ' ')
	dst = appendParams(dst, p.Params)
	dst = append(dst, ' ')
	dst = appendNString(dst, p.ID)
	dst = append(dst, ' ')
	dst = appendNString(dst, p.Description)
	dst = append(dst, ' ')
	dst = appendString(dst, p.Encoding)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, p.Size(), 10)
	switch {
	case p.IsMessage():
		dst = append(dst, ' ')
		dst = p.Parts[0].Env.AppendIMAP(dst)
		dst = append(dst, ' ')
		dst = p.Parts[0].AppendBodyStructure(dst, extended)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, p.Lines, 10)
	case p.Type == "text":
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, p.Lines, 10)
	}
	if extended {
		dst = append(dst, ' ')
		dst = appendNString(dst, p.MD5)
		dst = p.appendExt(dst)
	}
	return append(dst, ')')
}

// appendExt appends SP body-fld-dsp SP body-fld-lang SP body-fld-loc.
func (p *Part) appendExt(dst []byte) []byte {
	dst = append(dst, ' ')
	if p.Disposition == "" {
		dst = append(dst, "NIL"...)
	} else {
		dst = append(dst, '(')
		dst = appendString(dst, p.Disposition)
		dst = append(dst, ' ')
		dst = appendParams(dst, p.DispParams)
		dst = append(dst, ')')
	}
	dst = append(dst, ' ')
	if len(p.Language) == 0 {
		dst = append(dst, "NIL"...)
	} else {
		dst = append(dst, '(')
		for i, l := range p.Language {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = appendString(dst, l)
		}
		dst = append(dst, ')')
	}
	dst = append(dst, ' ')
	return appendNString(dst, p.Location)
}

func appendParams(dst []byte, params []Param) []byte {
	if len(params) == 0 {
		return append(dst, "NIL"...)
	}
	dst = append(dst, '(')
	for i, p := range params {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendString(dst, p.Name)
		dst = append(dst, ' ')
		dst = appendString(dst, p.Value)
	}
	return append(dst, ')')
}

// IMAP renders e as an IMAP envelope (RFC 9051 7.5.2). A nil envelope
// renders with every field NIL.
func (e *Envelope) IMAP() []byte { return e.AppendIMAP(nil) }

// AppendIMAP appends e.IMAP() to dst.
func (e *Envelope) AppendIMAP(dst []byte) []byte {
	if e == nil {
		e = &Envelope{}
	}
	dst = append(dst, '(')
	dst = appendNString(dst, e.Date)
	dst = append(dst, ' ')
	dst = appendNString(dst, e.Subject)
	for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		dst = append(dst, ' ')
		dst = appendAddresses(dst, l)
	}
	dst = append(dst, ' ')
	dst = appendNString(dst, e.InReplyTo)
	dst = append(dst, ' ')
	dst = appendNString(dst, e.MessageID)
	return append(dst, ')')
}

func appendAddresses(dst []byte, l []Address) []byte {
	if len(l) == 0 {
		return append(dst, "NIL"...)
	}
	dst = append(dst, '(')
	for _, a := range l {
		dst = append(dst, '(')
		dst = appendNString(dst, a.Name)
		dst = append(dst, ' ')
		dst = appendNString(dst, a.ADL)
		dst = append(dst, ' ')
		dst = appendNString(dst, a.Mailbox)
		dst = append(dst, ' ')
		dst = appendNString(dst, a.Host)
		dst = append(dst, ')')
	}
	return append(dst, ')')
}

// appendNString appends s as an IMAP nstring: NIL when empty.
func appendNString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "NIL"...)
	}
	return appendString(dst, s)
}

// appendString appends s as an IMAP string: quoted when it holds only
// 7-bit TEXT-CHARs, else a literal (RFC 9051 4.3). NUL bytes, which no IMAP
// string may carry, are dropped.
func appendString(dst []byte, s string) []byte {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	quotable := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '\r' || c == '\n' {
			quotable = false
			break
		}
	}
	if !quotable {
		dst = append(dst, '{')
		dst = strconv.AppendInt(dst, int64(len(s)), 10)
		dst = append(dst, "}\r\n"...)
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}
