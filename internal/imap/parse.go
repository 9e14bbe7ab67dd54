package imap

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// parser decodes one command. Its line is the current line of the
// command; a literal announcement ends a line, and after the literal the
// command continues on the next line.
type parser struct {
	d        *Decoder
	lim      Limits
	line     []byte
	pos      int
	used     int  // non-literal bytes of the command so far
	needLine bool // a literal was read; the command goes on in the next line, not read yet
	depth    int
	values   int
	litTotal int64 // literal bytes of the command
	memTotal int64 // literal bytes held in memory
	tag      string
	files    []*os.File
}

func syntaxErr(format string, args ...any) *ProtocolError {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// command reads a whole command: RFC 9051 9 command = tag SP (command-any
// / ...) CRLF. The arguments are decoded generically.
func (p *parser) command() (*Command, error) {
	line, long, err := p.d.readLine(p.lim.MaxLine)
	if err == errLineTooLong {
		p.line = line
		p.tag, _ = p.readTag()
		return nil, &ProtocolError{Code: "LIMIT", Msg: "command line too long", Fatal: true}
	}
	if err != nil {
		return nil, err
	}
	p.line, p.used = line, len(line)
	if long {
		p.tag, _ = p.readTag()
		return nil, &ProtocolError{Code: "LIMIT", Msg: fmt.Sprintf("command line longer than %d bytes", p.lim.MaxLine)}
	}
	if len(line) == 0 {
		return nil, syntaxErr("empty command line")
	}
	if p.tag, err = p.readTag(); err != nil {
		return nil, err
	}
	cmd := &Command{Tag: p.tag}
	if cmd.Name, err = p.readName(); err != nil {
		return nil, err
	}
	if cmd.Name == "UID" {
		if p.eol() {
			return nil, syntaxErr("UID needs a command")
		}
		p.pos++
		sub, err := p.readName()
		if err != nil {
			return nil, err
		}
		cmd.Name += " " + sub
	}
	for !p.eol() {
		if p.line[p.pos] != ' ' {
			return nil, p.unexpected()
		}
		p.pos++
		v, err := p.value(false)
		if err != nil {
			return nil, err
		}
		cmd.Args = append(cmd.Args, v)
	}
	return cmd, nil
}

// readTag reads the tag and the space after it. RFC 9051 9 tag =
// 1*<any ASTRING-CHAR except "+">.
func (p *parser) readTag() (string, error) {
	i := 0
	for i < len(p.line) && isTagChar(p.line[i]) {
		i++
	}
	if i == 0 || i == len(p.line) || p.line[i] != ' ' {
		if i > 0 && i == len(p.line) {
			return "", &ProtocolError{Tag: string(p.line[:i]), Msg: "missing command name"}
		}
		return "", syntaxErr("invalid tag")
	}
	p.pos = i + 1
	return string(p.line[:i]), nil
}

// readName reads a command name (an atom), upper-cased.
func (p *parser) readName() (string, error) {
	start := p.pos
	for p.pos < len(p.line) && isNameChar(p.line[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", syntaxErr("missing command name")
	}
	if !p.eol() && p.line[p.pos] != ' ' {
		return "", p.unexpected()
	}
	return strings.ToUpper(string(p.line[start:p.pos])), nil
}

func (p *parser) eol() bool { return p.pos >= len(p.line) }

func (p *parser) unexpected() *ProtocolError {
	if p.eol() {
		return syntaxErr("unexpected end of line")
	}
	c := p.line[p.pos]
	if c > ' ' && c < 0x7f {
		return syntaxErr("unexpected %q at byte %d", c, p.pos)
	}
	return syntaxErr("unexpected byte 0x%02x at byte %d", c, p.pos)
}

// value reads one value. In a section (sect) ']' ends an atom.
func (p *parser) value(sect bool) (Value, error) {
	if p.values++; p.values > p.lim.MaxValues {
		return Value{}, &ProtocolError{Code: "LIMIT", Msg: fmt.Sprintf("more than %d values in one command", p.lim.MaxValues)}
	}
	if p.eol() {
		return Value{}, syntaxErr("missing value at end of line")
	}
	switch c := p.line[p.pos]; {
	case c == '(':
		return p.list(sect)
	case c == '"':
		return p.quoted()
	case c == '{':
		return p.literal(false)
	case c == '~' && p.pos+1 < len(p.line) && p.line[p.pos+1] == '{':
		return p.literal(true)
	}
	return p.atom(sect)
}

func (p *parser) enter() error {
	if p.depth++; p.depth > p.lim.MaxDepth {
		return &ProtocolError{Code: "LIMIT", Msg: fmt.Sprintf("nesting deeper than %d", p.lim.MaxDepth)}
	}
	return nil
}

// list reads "(" [value *(SP value)] ")".
func (p *parser) list(sect bool) (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	p.pos++
	vs, err := p.seq(')', sect)
	p.depth--
	if vs == nil {
		vs = []Value{}
	}
	return Value{Kind: KindList, List: vs}, err
}

// seq reads values separated by single spaces up to and including close.
func (p *parser) seq(close byte, sect bool) ([]Value, error) {
	var vs []Value
	for {
		if p.eol() {
			return nil, syntaxErr("missing %q", close)
		}
		if p.line[p.pos] == close {
			p.pos++
			return vs, nil
		}
		if len(vs) > 0 {
			if p.line[p.pos] != ' ' {
				return nil, p.unexpected()
			}
			p.pos++
		}
		v, err := p.value(sect)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
}

func isTagChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`(){%*"\+`, rune(c))
}

// isNameChar: RFC 9051 9 ATOM-CHAR, without '['.
func isNameChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`(){%*"\][`, rune(c))
}

// isAtomChar: any byte except SP, CTL, '(', ')', '"', '[' (and ']' in a
// section). 8-bit bytes pass.
func isAtomChar(c byte, sect bool) bool {
	switch {
	case c <= ' ' || c == 0x7f:
		return false
	case c == '(' || c == ')' || c == '"' || c == '[':
		return false
	case c == ']':
		return !sect
	}
	return true
}

// atom reads an atom and the section and partial that may follow it.
func (p *parser) atom(sect bool) (Value, error) {
	start := p.pos
	for p.pos < len(p.line) && isAtomChar(p.line[p.pos], sect) {
		p.pos++
	}
	if p.pos == start {
		return Value{}, p.unexpected()
	}
	v := Value{Kind: KindAtom, Atom: string(p.line[start:p.pos])}
	if p.eol() || p.line[p.pos] != '[' {
		return v, nil
	}
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	p.pos++
	sec, err := p.seq(']', true)
	p.depth--
	if err != nil {
		return Value{}, err
	}
	if sec == nil {
		sec = []Value{}
	}
	v.HasSection, v.Section = true, sec
	if p.eol() || p.line[p.pos] != '<' {
		return v, nil
	}
	p.pos++
	start = p.pos
	for p.pos < len(p.line) && (isDigit(p.line[p.pos]) || p.line[p.pos] == '.') {
		p.pos++
	}
	if p.pos == start || p.eol() || p.line[p.pos] != '>' {
		return Value{}, syntaxErr("bad partial <...>")
	}
	v.Partial = string(p.line[start:p.pos])
	p.pos++
	return v, nil
}

// quoted reads a quoted string: RFC 9051 9 quoted = DQUOTE *QUOTED-CHAR
// DQUOTE; only \" and \\ are escapes; CR, LF and NUL are refused.
func (p *parser) quoted() (Value, error) {
	i := p.pos + 1
	start := i
	out := make([]byte, 0, 16)
	for {
		if i >= len(p.line) {
			return Value{}, syntaxErr("unterminated quoted string")
		}
		switch c := p.line[i]; c {
		case '"':
			out = append(out, p.line[start:i]...)
			p.pos = i + 1
			return Value{Kind: KindString, Str: out, Size: int64(len(out))}, nil
		case '\\':
			if i+1 >= len(p.line) || (p.line[i+1] != '"' && p.line[i+1] != '\\') {
				return Value{}, syntaxErr("bad escape in quoted string")
			}
			out = append(out, p.line[start:i]...)
			out = append(out, p.line[i+1])
			i += 2
			start = i
			continue
		case '\r', '\n', 0:
			return Value{}, syntaxErr("CR, LF or NUL in quoted string")
		}
		i++
	}
}

// literal reads a literal: RFC 9051 9 literal = "{" number64 ["+"] "}"
// CRLF *CHAR8, literal8 (RFC 3516) = "~{" number64 ["+"] "}" CRLF
// *OCTET; "+" is LITERAL+ (RFC 7888). The announcement must end the line;
// the limits are checked before cont is called or a byte is read.
func (p *parser) literal(binary bool) (Value, error) {
	if binary {
		p.pos++
	}
	p.pos++ // '{'
	start := p.pos
	for p.pos < len(p.line) && isDigit(p.line[p.pos]) {
		p.pos++
	}
	digits := p.line[start:p.pos]
	sync := true
	if !p.eol() && p.line[p.pos] == '+' {
		sync = false
		p.pos++
	}
	if len(digits) == 0 || p.eol() || p.line[p.pos] != '}' {
		return Value{}, syntaxErr("bad literal announcement")
	}
	if p.pos++; !p.eol() {
		return Value{}, syntaxErr("literal announcement must end the line")
	}
	n, huge := parseCount(digits)
	if huge || n > p.lim.MaxLiteral || p.litTotal+n > p.lim.MaxCommandBytes {
		msg := fmt.Sprintf("literal over the limit of %d bytes", p.lim.MaxLiteral)
		if !huge && n <= p.lim.MaxLiteral {
			msg = fmt.Sprintf("literals of the command over the limit of %d bytes", p.lim.MaxCommandBytes)
		}
		return Value{}, &ProtocolError{Code: "TOOBIG", Msg: msg, Fatal: !sync}
	}
	if sync {
		if err := p.d.cont(); err != nil {
			return Value{}, err
		}
	}
	v, err := p.readLiteral(n, binary)
	if err != nil {
		return Value{}, err
	}
	return v, p.nextLine()
}

// readLiteral reads n bytes into memory or a spill file.
func (p *parser) readLiteral(n int64, binary bool) (Value, error) {
	p.litTotal += n
	p.needLine = true
	v := Value{Kind: KindString, Size: n, Literal: true, Binary: binary}
	var nul bool
	if n <= int64(p.lim.SpillOver) && p.memTotal+n <= memFactor*int64(p.lim.SpillOver) {
		p.memTotal += n
		buf := make([]byte, 0, n)
		if err := p.d.stream(n, func(b []byte) { buf = append(buf, b...) }); err != nil {
			return Value{}, err
		}
		v.Str = buf
		nul = !binary && bytes.IndexByte(buf, 0) >= 0
	} else {
		var werr error
		err := p.d.stream(n, func(b []byte) {
			if !binary && !nul && bytes.IndexByte(b, 0) >= 0 {
				nul = true
			}
			if werr == nil {
				werr = p.spillWrite(&v, b)
			}
		})
		if err != nil {
			return Value{}, err
		}
		if werr != nil {
			return Value{}, &ProtocolError{Code: "UNAVAILABLE", Msg: "cannot store literal", cause: werr}
		}
	}
	if nul {
		return Value{}, syntaxErr("NUL in literal (use literal8 ~{n} for binary data)")
	}
	return v, nil
}

// spillWrite appends b to v's spill file, creating it on first use.
func (p *parser) spillWrite(v *Value, b []byte) error {
	if v.File == nil {
		f, err := p.d.spill()
		if err != nil {
			return err
		}
		if f == nil {
			return fmt.Errorf("spill returned no file")
		}
		p.files = append(p.files, f)
		v.File = f
	}
	_, err := v.File.Write(b)
	return err
}

// nextLine reads the line that continues the command after a literal.
func (p *parser) nextLine() error {
	line, long, err := p.d.readLine(p.lim.MaxLine - p.used)
	if err != nil {
		return midCommand(err)
	}
	p.needLine = false
	p.line, p.pos = line, 0
	p.used += len(line)
	if long {
		return &ProtocolError{Code: "LIMIT", Msg: fmt.Sprintf("command line longer than %d bytes", p.lim.MaxLine)}
	}
	return nil
}

// recover consumes the rest of a bad command (see ReadCommand).
func (p *parser) recover() error {
	for {
		if p.needLine {
			if _, _, err := p.d.readLine(p.lim.MaxLine); err != nil {
				return midCommand(err)
			}
			p.needLine = false
		}
		n, sync, ok, huge := announcement(p.d.tail)
		if !ok || sync {
			return nil
		}
		if huge || n > p.lim.MaxLiteral || p.litTotal+n > p.lim.MaxCommandBytes {
			return &ProtocolError{Code: "TOOBIG", Msg: "literal over the limit", Fatal: true}
		}
		if err := p.d.stream(n, func([]byte) {}); err != nil {
			return err
		}
		p.litTotal += n
		p.needLine = true
	}
}

// cleanup removes the spill files of a command that failed.
func (p *parser) cleanup() {
	for _, f := range p.files {
		_ = removeSpill(f)
	}
	p.files = nil
}

// midCommand maps a readLine error inside a command: the end of input is
// unexpected there, and a line past the discard budget is fatal.
func midCommand(err error) error {
	switch err {
	case io.EOF:
		return io.ErrUnexpectedEOF
	case errLineTooLong:
		return &ProtocolError{Code: "LIMIT", Msg: "command line too long", Fatal: true}
	}
	return err
}
