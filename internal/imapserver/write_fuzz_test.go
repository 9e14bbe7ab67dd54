package imapserver

import (
	"strings"
	"testing"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
	"pillarbox/internal/testkit"
)

// FuzzWriteCommands is FuzzSession seeded with the commands that change a
// mailbox (STORE, COPY, MOVE, EXPUNGE, APPEND) and QUOTA: arbitrary
// client bytes must never make a session panic. "XPREAUTH" (fuzz only)
// logs alice in without the password hash. INBOX is refilled when the
// inputs have emptied it.
func FuzzWriteCommands(f *testing.F) {
	seeds := []string{
		"a XPREAUTH\r\nb SELECT INBOX\r\nc STORE 1:* +FLAGS (\\Seen $X)\r\nd UID STORE 1:* -FLAGS.SILENT \\Seen\r\n",
		"a XPREAUTH\r\nb SELECT INBOX (CONDSTORE)\r\nc STORE 1 (UNCHANGEDSINCE 0) FLAGS ()\r\nd STORE $ +FLAGS (\\Deleted)\r\n",
		"a XPREAUTH\r\nb ENABLE QRESYNC\r\nc SELECT INBOX\r\nd UID MOVE 1:2 Archive\r\ne MOVE * INBOX\r\n",
		"a XPREAUTH\r\nb SELECT INBOX\r\nc COPY 1:* INBOX\r\nd UID COPY 1,3:* Nowhere\r\n",
		"a XPREAUTH\r\nb SELECT INBOX\r\nc STORE 1 +FLAGS (\\Deleted)\r\nd EXPUNGE\r\ne UID EXPUNGE 1:*\r\nf CLOSE\r\n",
		"a XPREAUTH\r\nb APPEND INBOX (\\Seen) \" 1-Jan-2026 00:00:00 +0000\" {5+}\r\nhello\r\n",
		"a XPREAUTH\r\nb APPEND INBOX {3+}\r\na\nb {2+}\r\nxy ~{2+}\r\n\x00\x01 UTF8 (~{1+}\r\nx)\r\n",
		"a XPREAUTH\r\nb APPEND INBOX {3}\r\nabc\r\nc APPEND INBOX {5000}\r\n",
		"a XPREAUTH\r\nb GETQUOTAROOT INBOX\r\nc GETQUOTA \"\"\r\nd SETQUOTA \"\" (STORAGE 1)\r\n",
		"a XPREAUTH\r\nb EXAMINE INBOX\r\nc STORE 1 +FLAGS \\Seen\r\nd MOVE 1 Trash\r\ne EXPUNGE\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := newEnv(f, envConfig{plaintext: true,
		opts: Options{MaxConnsPerIP: -1, MaxConnsPerAccount: -1, MaxLiteral: 4096},
		setup: func(s *Server) {
			s.cmds["XPREAUTH"] = command{states: inNotAuth, run: func(s *session, c *imap.Command) error {
				acct, err := s.srv.opts.Store.Account(s.ctx, alice)
				if err != nil {
					return err
				}
				return s.loggedIn("XPREAUTH", acct)
			}}
		}})
	f.Fuzz(func(t *testing.T, in []byte) {
		if mb, err := env.st.Mailbox(t.Context(), env.alice.ID, "INBOX"); err != nil || mb.Messages < 3 {
			_, err := env.st.Deliver(t.Context(), &store.Delivery{Blob: strings.NewReader("Subject: x\r\n\r\nx\r\n"),
				Local: []store.LocalRecipient{{AccountID: env.alice.ID, Mailbox: "INBOX"}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		testkit.FeedSession(t, env.addr, in, env.logs)
	})
}
