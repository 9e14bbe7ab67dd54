// Package smtpserver is Pillarbox's SMTP endpoint: MX (RFC 5321, port 25)
// and message submission (RFC 6409 on 587 with STARTTLS, RFC 8314 on 465
// with implicit TLS). It checks senders and recipients through a Backend,
// spools each message into a file from Backend.CreateSpool, prepends a
// Received header, and hands the file to Backend.Deliver; the client gets
// "250 2.0.0 Ok: queued as <id>" only after Deliver returned (the store
// makes the message durable first). Nothing is kept on disk by this
// package: the spool file is closed and removed after Deliver.
//
// # Layers
//
// The protocol state machine is github.com/emersion/go-smtp v0.25.1's
// server (command dispatch, MAIL/RCPT parameter parsing, dot-unstuffing,
// BDAT, the AUTH exchange). Between it and the socket sits our framing
// layer (conn: wire.go reads, reply.go writes) because go-smtp reads
// commands with net/textproto, which takes a bare LF as a line end, and
// it cannot be told about several things the RFCs and our policy require.
// The framing layer:
//
//   - reads one unit at a time (a command line, a DATA line, a piece of a
//     BDAT chunk) and hands it to go-smtp only when go-smtp asks, so it
//     always knows whether bytes are a command, DATA content (after a 354
//     reply) or a chunk (after "BDAT n"), and replies stay in order;
//   - refuses bare CR, bare LF and NUL in command lines (500 5.5.2, the
//     session continues) and over-long lines (500 5.5.2);
//   - refuses bare CR or bare LF in DATA content with 554 5.6.0 and closes
//     the connection: once a peer could disagree on where the message
//     ends (SMTP smuggling, "\n.\n" or "\r.\n"), no later byte can be
//     trusted as a command. BDAT content is length-framed, so a bare CR/LF
//     there (except BODY=BINARYMIME) is refused at the end of the message
//     with 554 5.6.0 and the session goes on;
//   - answers unknown verbs itself (500 5.5.1), counts every 5xx reply and
//     closes with 421 4.7.0 after Options.MaxErrors (go-smtp's fixed limit
//     of 3 never triggers because it never sees unknown verbs);
//   - does STARTTLS itself (go-smtp would wrap the socket below us) and
//     the implicit TLS handshake on 465; adds STARTTLS and REQUIRETLS to
//     EHLO, puts our host name first in the EHLO/HELO reply;
//   - rewrites go-smtp's replies whose codes differ from the RFCs: 502 ->
//     503 for bad sequence, 501 5.5.2 -> 5.5.4, unknown parameters -> 555
//     (see rewrite in reply.go; transcript tests pin every one);
//   - sets read deadlines (CommandTimeout per command, DataTimeout per read
//     inside DATA/BDAT) and answers 421 4.4.2 on timeout, and 421 4.3.2
//     on Shutdown;
//   - batches replies: they are flushed when the next read would block,
//     which is what PIPELINING (RFC 2920) wants.
//
// Connection limits (MaxConnsPerIP, and the session Counter of
// Options.Sessions, which may be shared with other endpoints) are applied
// by our listener wrapper at accept time with "421 4.7.0" and close.
//
// # Changing limits at run time
//
// SetLimits replaces the per-connection Limits (message size, recipients,
// line length, connections per IP, errors, timeouts) for connections
// accepted afterwards; each connection keeps the snapshot it was admitted
// with. go-smtp reads its own Server's MaxMessageBytes and MaxRecipients
// (EHLO SIZE and LIMITS RCPTMAX, MAIL SIZE=, the RCPT count, the DATA
// reader, BDAT) from its connection goroutines without locking, so a live
// smtp.Server is never changed: each set of limits comes with its own
// smtp.Server (a generation). When the listener wrapper admits a
// connection under a newer generation than the go-smtp Serve loop it runs
// in, it keeps that connection and makes go-smtp's Serve return
// errNewLimits; Server.Serve then calls Serve on the new generation's
// smtp.Server, which gets that connection first. Old sessions finish on
// the smtp.Server they started on. The session Counter's maximum is
// changed with its own SetMax.
//
// # Panics
//
// Every callback of ours that go-smtp calls (Session methods, the SASL
// wrapper, the framing layer's Read and Write) recovers a panic, logs it
// with its stack and closes that connection after 421 4.3.0. go-smtp
// itself recovers panics inside command handlers. A panic inside go-smtp's
// own code outside a command handler would not be recovered: its
// connection goroutine is started by go-smtp's Serve and cannot be
// wrapped from outside.
//
// # Addresses
//
// MAIL FROM / RCPT TO paths are parsed from the raw command line by
// pathArg (RFC 5321 4.1.2, RFC 6531): go-smtp's parser unquotes quoted
// local parts and accepts "a@b@c", which would blur relay checks. The
// Backend gets the mailbox as written (quotes kept, source route dropped).
//
// # RFCs
//
//	RFC 5321  SMTP                      RFC 3207  STARTTLS
//	RFC 6409  Submission                RFC 8314  implicit TLS (465)
//	RFC 4954  AUTH                      RFC 2920  PIPELINING
//	RFC 6152  8BITMIME                  RFC 3030  CHUNKING, BINARYMIME
//	RFC 1870  SIZE                      RFC 2034  ENHANCEDSTATUSCODES
//	RFC 3461  DSN                       RFC 6531  SMTPUTF8
//	RFC 8689  REQUIRETLS                RFC 3848  Received "with" keywords
//	RFC 9422  LIMITS (RCPTMAX, from go-smtp)
package smtpserver
