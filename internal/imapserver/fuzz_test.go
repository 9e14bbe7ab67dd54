package imapserver

import (
	"testing"

	"pillarbox/internal/imap"
	"pillarbox/internal/testkit"
)

// FuzzSession feeds arbitrary client bytes to a whole session over a real
// socket (with a real store) and fails on any panic the session recovered
// from. "XPREAUTH" (fuzz only) logs alice in without the password hash,
// so the fuzzer reaches the authenticated and selected states cheaply.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n",
		"a LOGIN alice@example.test \"correct horse\"\r\nb SELECT INBOX\r\n",
		"a XPREAUTH\r\nb SELECT INBOX\r\nc NOOP\r\nd IDLE\r\nDONE\r\ne CLOSE\r\n",
		"a XPREAUTH\r\nb LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
		"a XPREAUTH\r\nb CREATE x/y (USE (\\Sent))\r\nc RENAME x z\r\nd DELETE z\r\ne LSUB \"\" *\r\n",
		"a XPREAUTH\r\nb ENABLE QRESYNC UTF8=ACCEPT IMAP4rev2\r\nc SELECT INBOX (QRESYNC (1 1 1:* (1 1)))\r\nd UID FETCH 1:* FLAGS\r\n",
		"a XPREAUTH\r\nb STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)\r\n",
		"a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE LOGIN\r\nYQ==\r\n\r\n",
		"a XPREAUTH\r\nb CREATE {5+}\r\nhello\r\nc ID (\"name\" \"x\")\r\nd NAMESPACE\r\n",
		"a XPREAUTH\r\nb EXAMINE INBOX\r\nc UNSELECT\r\nd SELECT &Jjo-\r\n((((\r\n",
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
	for range 3 {
		env.deliver(env.alice, "INBOX", nil, "")
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		testkit.FeedSession(t, env.addr, in, env.logs)
	})
}
