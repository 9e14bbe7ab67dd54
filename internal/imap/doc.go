// Package imap is the IMAP wire format (RFC 9051, RFC 3501 and the
// extensions that change the syntax: LITERAL+/LITERAL- RFC 7888, BINARY
// literal8 RFC 3516, SEARCHRES "$" RFC 5182, UTF8=ACCEPT RFC 6855): a
// command Decoder, a response Writer, sequence sets, modified UTF-7 mailbox
// names and IMAP dates. It holds no state beyond one connection's Decoder
// and Writer and does not know what commands mean: the server checks the
// arguments of each command.
//
// # Decoder invariants
//
// Everything the Decoder accepts is bounded by Limits:
//   - the non-literal bytes of one command (all its lines together, line
//     ends excluded) by MaxLine; that is also the most line data held in
//     memory;
//   - one literal by MaxLiteral and all literals of a command by
//     MaxCommandBytes, both checked before a continuation request is sent
//     or a byte of the literal is read;
//   - nesting of "(" and "[" by MaxDepth, the number of values (every list,
//     list element and section element counts) by MaxValues.
//
// Literals of at most SpillOver bytes are held in Value.Str. Larger ones
// are streamed, in chunks of the bufio.Reader's buffer, into a file that the
// spill function creates when it is first needed (Value.File); a command
// also spills small literals once its in-memory literals pass
// 16*SpillOver bytes. So one command holds at most about MaxLine +
// 16*SpillOver bytes of data in memory (plus one Value per value).
// Command.Close closes and removes the spill files; on an error the Decoder
// removes them itself.
//
// # Errors and resynchronisation
//
// ReadCommand returns the reader's errors as they are (io.EOF at a clean
// end of input, io.ErrUnexpectedEOF inside a command, net errors) and a
// *ProtocolError for bad input. After a non-fatal ProtocolError the rest of
// the bad command has been consumed: the rest of its line, and if that line
// ends in a literal announcement, a synchronizing literal is NOT read (no
// continuation was sent, so the client waits for our tagged BAD) while a
// non-synchronizing one within the limits is read and thrown away together
// with the line after it, and so on. The next ReadCommand starts at the
// next command. A Fatal ProtocolError means the stream cannot be
// resynchronised (a non-synchronizing literal over the limits, a line
// longer than 16*MaxLine): the server says "* BYE" and closes.
//
// A line longer than MaxLine is discarded up to its end (non-fatal, with
// the tag when its first bytes hold one); it is fatal only past 16*MaxLine.
//
// Line ends: CRLF, and a bare LF is accepted as a line end too. Real
// clients send CRLF; accepting LF as well costs nothing, cannot
// smuggle anything (IMAP has no end-of-data marker) and keeps a person
// typing into nc working. A bare CR inside a line is a syntax error.
//
// 8-bit bytes are accepted in atoms and quoted strings as they are (UTF-8
// under UTF8=ACCEPT, and some clients send Latin-1 after SEARCH CHARSET):
// the server validates UTF-8 where the meaning of an argument requires it.
//
// # Writer
//
// The Writer buffers every call and remembers the first error (Err); the
// caller flushes. String picks a quoted string when it can and a literal
// otherwise, so any text can be written safely.
package imap
