package imap

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// Kind is the syntactic kind of a Value.
type Kind int

// Value kinds.
const (
	KindAtom   Kind = iota + 1 // atom, number, NIL, \Flag, sequence set, "*", "$", date atoms ...
	KindString                 // quoted string or literal
	KindList                   // parenthesized list
)

// Value is one argument of a command as sent. The Decoder does not know
// the meaning of arguments: "1:*" and "NIL" are atoms, "\"NIL\"" is a
// string.
type Value struct {
	Kind Kind
	// Atom is the token of a KindAtom exactly as sent (case kept). Atom
	// chars are any CHAR except SP, CTL, '(', ')', '"', '[' and '{' at the
	// start of a token; ']' ends an atom only inside a section. 8-bit bytes
	// are passed through.
	Atom string
	Str  []byte   // KindString held in memory (quoted strings, literals <= SpillOver)
	File *os.File // KindString spilled literal (then Str is nil); read with ReadAt from 0, Size bytes
	Size int64    // KindString: length in bytes
	// Literal is set when the string came as a literal, Binary when it was
	// a literal8 ~{n} (RFC 3516).
	Literal bool
	Binary  bool
	List    []Value // KindList
	// An atom immediately followed by '[' carries the bracketed part (FETCH
	// "BODY.PEEK[1.2]<0.100>", "BINARY[1]", "BODY[HEADER.FIELDS (From To)]").
	HasSection bool
	Section    []Value // values inside [...], may be empty ("BODY[]")
	Partial    string  // text inside <...> right after ']' (digits and '.'), "" if none
}

// String returns the text of an atom or of a string held in memory; ""
// for lists and spilled literals.
func (v Value) String() string {
	switch v.Kind {
	case KindAtom:
		return v.Atom
	case KindString:
		return string(v.Str)
	}
	return ""
}

// IsNIL reports whether v is the atom NIL (any case). The string "NIL" is
// not NIL.
func (v Value) IsNIL() bool {
	return v.Kind == KindAtom && !v.HasSection && strings.EqualFold(v.Atom, "NIL")
}

// Command is one decoded command.
type Command struct {
	Tag  string
	Name string // upper-cased; "UID FETCH", "UID SEARCH" etc. for UID commands (one space)
	Args []Value
}

// Close closes and removes the spill files of the command's literals. It
// returns the first error other than a file that is already gone.
func (c *Command) Close() error {
	if c == nil {
		return nil
	}
	return closeValues(c.Args)
}

func closeValues(vs []Value) error {
	var first error
	for i := range vs {
		v := &vs[i]
		if v.File != nil {
			if err := removeSpill(v.File); err != nil && first == nil {
				first = err
			}
			v.File = nil
		}
		if err := closeValues(v.List); err != nil && first == nil {
			first = err
		}
		if err := closeValues(v.Section); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func removeSpill(f *os.File) error {
	err := f.Close()
	if rerr := os.Remove(f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// ProtocolError is bad input from the client. After a non-fatal one the
// Decoder has consumed the rest of the bad command (the line; a
// synchronizing literal announced at its end is NOT read and no
// continuation was sent).
type ProtocolError struct {
	Tag   string // "" when the tag could not be read (reply "* BAD ...")
	Code  string // response code without brackets: "TOOBIG" (literal over the limits), "LIMIT" (line, depth, values), "UNAVAILABLE" (spill failed), "" else
	Msg   string // human text for the client
	Fatal bool   // the stream cannot be resynchronised: send "* BYE" and close
	cause error  // internal cause (spill errors), for logs only
}

// Error returns the message, the code and the internal cause if any (for
// logs; send Msg to the client).
func (e *ProtocolError) Error() string {
	s := "imap: " + e.Msg
	if e.Code != "" {
		s = "imap: [" + e.Code + "] " + e.Msg
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the internal cause (a spill file error), or nil.
func (e *ProtocolError) Unwrap() error { return e.cause }
