// Package pop3server is Pillarbox's POP3 server: RFC 1939 (USER/PASS,
// STAT, LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL and the
// AUTHORIZATION, TRANSACTION and UPDATE states), RFC 2449 CAPA with
// response codes (RFC 3206), RFC 2595 STLS and RFC 5034 AUTH (PLAIN,
// LOGIN, SCRAM-SHA-256 with initial response), on a plain port with STLS
// (110) or with implicit TLS (995, RFC 8314).
//
// It serves the same store.Store as IMAP, so the two always agree:
//   - The maildrop is a list of mailboxes (INBOX by default; per account
//     store.Account.POP3Maildrop, else Limits.Maildrop), numbered 1..n in
//     maildrop order then UID order when the session enters TRANSACTION.
//     Mail arriving later shows in the next session.
//   - STAT and LIST sizes are the stored sizes, exactly the octets RETR
//     sends before dot-stuffing (stored mail has CRLF line ends).
//   - UIDL is the store's POP3 UID: fixed when the message is stored,
//     kept across restarts and IMAP moves, never reused.
//   - DELE only marks. QUIT in TRANSACTION enters UPDATE and removes the
//     marked messages in one atomic store.ExpungeMany (IMAP sessions see
//     the expunges from the change feed at once), or, in DeleteHide mode,
//     adds the keyword $POP3Deleted, which hides them from POP3 only. A
//     dropped connection, an idle timeout or a shutdown deletes nothing.
//   - One session per account at a time (the Maildrops table is shared by
//     the 110 and 995 servers): a second login gets -ERR [IN-USE].
//   - RETR of a message expunged over IMAP during the session answers
//     -ERR "was removed by another session".
//
// Limits: command line length, commands per session, errors (bad
// commands and failed logins) before the connection is closed,
// connections per address and in total (shared with every endpoint), an
// idle timer of at least 10 minutes (RFC 1939 3); failed logins count
// towards the lockout shared with SMTP and IMAP (package auth). Each
// connection runs in its own goroutine, which recovers from a panic, logs
// it and closes that connection only. Replies to pipelined commands
// (RFC 2449 6.6) are written together when the client's input is drained.
package pop3server
