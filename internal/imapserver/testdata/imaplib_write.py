# Python's imaplib against the server: APPEND, STORE, COPY, UID MOVE,
# EXPUNGE. Run by TestImaplibWrite with the server's host and port; any
# failure raises (non-zero exit). Prints "done" at the end.
import imaplib
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


m = imaplib.IMAP4(host, port)
typ, _ = m.login(user, password)
check(typ == "OK", "login")
typ, data = m.capability()
check(b" MOVE " in data[0] and b" UIDPLUS " in data[0], "MOVE/UIDPLUS after login: %r" % (data,))

msg = b"From: a@example.test\r\nSubject: from imaplib\r\n\r\nhello\r\n"
date = imaplib.Time2Internaldate(time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1)))
for flags in ("(\\Seen)", None, "(\\Flagged $Work)"):
    typ, data = m.append("INBOX", flags, date, msg)
    check(typ == "OK" and data[0].startswith(b"[APPENDUID "), "append: %r %r" % (typ, data))
# imaplib sends bare LF line ends as given: the server stores CRLF.
typ, data = m.append("INBOX", None, None, b"Subject: lf\n\nbody\n")
check(typ == "OK", "append LF: %r" % (data,))
typ, data = m.append("Nowhere", None, None, msg)
check(typ == "NO" and b"TRYCREATE" in data[0], "append to missing: %r %r" % (typ, data))

typ, data = m.select("INBOX")
check(typ == "OK" and data[0] == b"4", "select: %r" % (data,))
typ, data = m.store("1:2", "+FLAGS", "(\\Answered)")
check(typ == "OK" and len(data) == 2 and b"\\Answered" in data[0], "store: %r" % (data,))
typ, data = m.store("3", "FLAGS.SILENT", "(\\Seen)")
check(typ == "OK" and data == [None], "store silent: %r" % (data,))
typ, data = m.copy("1:3", "Archive")
check(typ == "OK" and data[0].startswith(b"[COPYUID "), "copy: %r" % (data,))
typ, data = m.uid("MOVE", "4", "Trash")
check(typ == "OK", "uid move: %r" % (data,))
typ, data = m.store("1,3", "+FLAGS.SILENT", "(\\Deleted)")
check(typ == "OK", "store deleted: %r" % (data,))
typ, data = m.expunge()
# imaplib also returns the EXPUNGE that UID MOVE sent (message 4).
check(typ == "OK" and data == [b"4", b"3", b"1"], "expunge: %r" % (data,))
typ, data = m.getquotaroot("INBOX")
check(typ == "OK", "getquotaroot: %r" % (data,))
m.close()
m.logout()
print("done")
