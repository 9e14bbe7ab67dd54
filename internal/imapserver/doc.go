// Package imapserver is Pillarbox's IMAP endpoint: IMAP4rev2 (RFC 9051)
// and IMAP4rev1 (RFC 3501) over store.Store, on port 143 (STARTTLS) or
// 993 (implicit TLS, RFC 8314). The wire format (command decoding with
// bounded lines and literals, response encoding, sequence sets, modified
// UTF-7) is package imap; this package holds sessions, commands and the
// per-session view of the selected mailbox. Nothing is kept on disk here
// except literals too large for memory, spilled to Options.SpillDir (or
// the store's spool) and removed when their command ends.
//
// # Shape
//
// New(Options) -> *Server; Serve(net.Listener) runs until Shutdown(ctx),
// then returns ErrServerClosed. SetLimits replaces the per-connection
// Limits for connections accepted afterwards (each keeps its snapshot).
// Connection limits (per address, the shared session counter) are applied
// at accept with "* BYE [LIMIT]"; the per-account limit at login with
// NO [LIMIT]. Shutdown ends sessions waiting for a command or in IDLE at
// once with "* BYE", others after their command; when its context ends
// every connection is cut. Each connection goroutine recovers a panic,
// logs it with its stack and closes only that connection after
// "* BYE Internal error".
//
// Timeouts: AutoLogout (default 30 min, RFC 9051 5.4) while waiting for a
// command or in IDLE (entering IDLE re-arms it); CommandTimeout while a
// command is half sent and for every write. Both end with "* BYE".
//
// Before login only CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and
// AUTHENTICATE are accepted, literals are limited to 16 KiB, and without
// TLS no authentication is offered (LOGINDISABLED, NO [PRIVACYREQUIRED])
// unless the Authenticator offers mechanisms without TLS. Failed logins
// count towards MaxErrors; a lockout (auth.ErrLocked) ends the session.
//
// # Writing a command (conventions for the command files)
//
// A command is a handler in its own file, named in commandTable
// (dispatch.go) with the states it is valid in and whether expunges are
// held while it responds:
//
//	"FETCH":     {states: inSelected, run: cmdFetch, holdExpunge: true},
//	"UID FETCH": {states: inSelected, run: cmdFetch},
//
//	func cmdFetch(s *session, c *imap.Command) error
//
// c.Name is upper case, "UID FETCH" for UID forms; c.Args are the decoded
// values (literals may be spilled files: Value.File). dispatch has already
// checked the state. Argument helpers (args.go, name.go): wantArgs,
// astring, atomArg, listArg, atomList, numberArg, s.mailboxArg (decoded
// from mUTF-7 or UTF-8, INBOX canonical, checked: NO [CANNOT] / BAD),
// s.decodeName (decoded only).
//
// The handler writes untagged responses itself through s.w (an
// *imap.Writer): "* ..." ending in CRLF. It does not flush: the session
// flushes when the client has nothing more pipelined (a handler streaming
// a lot may call s.flush()). Its return value is the tagged reply:
//
//   - nil: "tag OK [s.okCode] s.okText", okText defaulting to
//     "<NAME> completed". Set s.okCode for codes such as "READ-WRITE",
//     "APPENDUID 38505 3955", "COPYUID ...", "HIGHESTMODSEQ n".
//   - no(code, text), bad(code, text): tagged NO / BAD with an optional
//     response code (RFC 5530: NONEXISTENT, ALREADYEXISTS, CANNOT, LIMIT,
//     OVERQUOTA, TOOBIG, UNAVAILABLE, ...). Every BAD counts towards
//     MaxErrors. storeErr(err) maps store errors (ErrNotFound ->
//     NO [NONEXISTENT], ErrExists -> NO [ALREADYEXISTS], ErrOverQuota ->
//     NO [OVERQUOTA], ErrInvalidName -> NO [CANNOT]) and passes others on.
//   - byeErr(code, text): "* BYE" and the session ends.
//   - errHandled: the handler wrote its tagged line itself (STARTTLS).
//   - any other error: logged, the client gets NO [UNAVAILABLE] with no
//     detail. Texts sent to clients never carry internal details.
//
// Session fields a handler uses: s.ctx (for store calls; cancelled when
// the server is forced down), s.srv.opts.Store, s.account (set once
// authenticated), s.sel (the selected view, non-nil in the selected
// state), s.lim (Limits snapshot; MaxLiteral is APPENDLIMIT), the enabled
// extensions s.condstore, s.qresync, s.utf8, s.rev2, and
// s.enableCondstore() for CONDSTORE-enabling commands (RFC 7162 3.1:
// FETCH MODSEQ, SEARCH MODSEQ, STORE UNCHANGEDSINCE, ...). capability.go
// holds the one list of advertised capabilities.
//
// # The selected mailbox (view.go)
//
// A view is the mailbox as this session's client knows it: msgs in UID
// order, sequence number = index + 1, each with the flags and MODSEQ last
// reported. It subscribes to the store's change feed at SELECT (before
// reading the mailbox, so nothing is missed) and folds changes into what
// the client has not been told yet; dispatch calls v.flush(s,
// !holdExpunge) after every command, before the tagged reply, and IDLE
// calls it as changes arrive. flush writes, in order: "* n EXPUNGE"
// (highest first) or "* VANISHED uids" with QRESYNC, unless expunges are
// held (RFC 9051 7.5.1: not during FETCH, STORE, SEARCH; their UID forms
// may); "* n EXISTS"; "* FLAGS (...)" when new keywords appeared; and
// "* n FETCH (FLAGS (...) UID u [MODSEQ (m)])" for flag changes (UID
// always, MODSEQ when CONDSTORE is on). A held expunged message keeps its
// sequence number (v.isExpunged(uid) tells; the store no longer has it).
// When the feed falls behind (a Kind 0 change and a closed channel), on
// store.ChangeResync, on a ChangeMailbox of the selected mailbox, or
// with too many unreported changes, the view re-reads the mailbox and
// reports the difference the same way. A selected mailbox deleted (or
// given a new UIDVALIDITY) elsewhere ends the session with
// "* BYE Selected mailbox was deleted" (like Dovecot: IMAP has no way to
// tell a client its selected mailbox is gone); deleting it in the session
// itself deselects it.
//
// What command files call:
//
//   - v.resolve(set, uidMode) -> UIDs ascending without duplicates:
//     sequence numbers beyond the count are BAD, UIDs not in the view are
//     skipped, "*" is the last message / largest UID, "$" is the SEARCHRES
//     result (v.setSearchRes(uids) saves one).
//   - v.uidToSeq(uid), v.seqToUID(seq), v.count(), v.isExpunged(uid),
//     v.readOnly (EXAMINE), v.mb.ID, v.mb.UIDValidity.
//   - Own changes, so they are not reported twice: after StoreFlags call
//     v.noteFlags(uid, modseq, flags) for every updated message (also with
//     .SILENT), and after a FETCH that sent FLAGS; after this session's
//     own Expunge or Move call v.reportExpunged(s, uids), which writes
//     EXPUNGE/VANISHED at once and removes the messages. The feed's copies
//     of these changes are then recognised (by MODSEQ and UID) and
//     dropped. Appends and copies into the selected mailbox need nothing:
//     the store publishes before it returns, so flush sends EXISTS before
//     the tagged OK.
//
// # Tests
//
// testdata/*.txt are dialogs replayed over real sockets against a real
// sqlstore and auth.Authenticator (format in transcript_test.go);
// testdata/rfc*.txt replay the examples of RFC 9051 section 6 and of
// RFC 7162, 4315, 6851 and 5182, adapted to a fresh mailbox;
// client_test.go drives go-imap v2's imapclient; resync_test.go checks
// QRESYNC resynchronisation against what imapclient sees; FuzzSession feeds
// arbitrary bytes to whole sessions. "@fakefetch" in a transcript makes
// FETCH answer OK without data (for tests of the expunge rules where the
// FETCH output does not matter).
//
// # RFCs
//
//	RFC 9051  IMAP4rev2             RFC 3501  IMAP4rev1
//	RFC 2177  IDLE                  RFC 2342  NAMESPACE
//	RFC 2971  ID                    RFC 3348  CHILDREN
//	RFC 3691  UNSELECT              RFC 4959  SASL-IR
//	RFC 5161  ENABLE                RFC 5258  LIST-EXTENDED
//	RFC 5530  response codes        RFC 5819  LIST-STATUS
//	RFC 6154  SPECIAL-USE           RFC 6855  UTF8=ACCEPT
//	RFC 7162  CONDSTORE, QRESYNC    RFC 7888  LITERAL+
//	RFC 7889  APPENDLIMIT           RFC 8314  implicit TLS
//	RFC 8438  STATUS=SIZE
package imapserver
