package smtpserver

import (
	"errors"
	"io"

	smtp "github.com/emersion/go-smtp"
)

var errBareNewline = errors.New("bare CR or LF in message")

var (
	errBareData = smtpErr(554, [3]int{5, 6, 0}, "Bare CR or LF in message data not allowed")
	errLost     = smtpErr(421, [3]int{4, 4, 2}, "Connection lost during transfer")
	// errSizeExceeded is go-smtp's own MAIL SIZE= refusal, spelled alike.
	errSizeExceeded = smtpErr(552, [3]int{5, 3, 4}, "Max message size exceeded")
)

// receive spools one message (DATA content unstuffed by readData and
// written straight to the spool, or the joined BDAT chunks from go-smtp), prepends our Received header, removes Bcc on
// submission, and hands it to Backend.Deliver. Its result is the reply.
func (c *conn) receive(tx *transaction, r io.Reader) error {
	sp := &spool{create: c.s.opts.Backend.CreateSpool, limit: spoolMemory}
	defer sp.discard(c.log)

	hdr := c.received(tx)
	mw := &msgWriter{
		w: sp,
		// DATA lines were checked for bare CR/LF as they arrived (readData);
		// BDAT content is length-framed and checked here (not BINARYMIME).
		checkCRLF: c.verb == "BDAT" && tx.env.Body != string(smtp.BodyBinaryMIME),
		stripBcc:  tx.info.Mode.submission(),
		inHeader:  true,
	}
	_, werr := io.WriteString(sp, hdr)
	fast := c.verb == "DATA" && werr == nil
	if fast { // readData writes the content to mw (conn.sink)
		c.sink, c.sinkN, c.sinkErr = mw, 0, nil
		defer func() { c.sink = nil }()
	}
	var n int64
	if werr == nil {
		n, werr = io.Copy(mw, r)
		if fast {
			n += c.sinkN
			if werr == nil {
				werr = c.sinkErr
			}
		}
		if werr == nil {
			werr = mw.Close()
		}
	}
	if werr != nil {
		return c.transferFailed(tx, r, werr)
	}
	if c.lim.MaxMessageBytes > 0 && n > c.lim.MaxMessageBytes { // BDAT: go-smtp allows one more
		c.log.Info("message too large", "tx", tx.id)
		return smtp.ErrDataTooLarge
	}
	tx.env.Size = int64(len(hdr)) + mw.written
	msg, err := sp.reader()
	if err != nil {
		c.log.Error("write spool", "err", err)
		return errTemp
	}
	id, err := c.s.opts.Backend.Deliver(c.ctx, &tx.info, &tx.env, msg)
	if err != nil {
		c.log.Warn("delivery failed", "tx", tx.id, "err", err.Error())
		return c.backendErr("Deliver", err)
	}
	rcpts := make([]string, len(tx.env.Recipients))
	for i, r := range tx.env.Recipients {
		rcpts[i] = r.Address
	}
	c.log.Info("message accepted", "tx", tx.id, "queue_id", id, "from", tx.env.From,
		"recipients", rcpts, "size", tx.env.Size, "received", n)
	// go-smtp sends a nil error as "250 2.0.0 OK: queued"; a 250 SMTPError
	// is how we get the queue ID into the reply.
	return smtpErr(250, [3]int{2, 0, 0}, "Ok: queued as "+id)
}

// transferFailed answers a transfer that could not be spooled. The rest of
// the content is read so the next command is found where it belongs.
func (c *conn) transferFailed(tx *transaction, r io.Reader, err error) error {
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		c.log.Info("message too large", "tx", tx.id)
		return smtp.ErrDataTooLarge // go-smtp drains DATA; BDAT never gets here
	case errors.Is(err, errBareNewline):
		_, _ = io.Copy(io.Discard, r)
		c.log.Info("bare CR or LF in BDAT content", "tx", tx.id)
		return errBareData
	case errors.Is(err, errConnLost), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, smtp.ErrDataReset):
		c.log.Info("transfer aborted", "tx", tx.id, "err", err.Error())
		return errLost
	}
	_, _ = io.Copy(io.Discard, r)
	c.log.Error("spool failed", "tx", tx.id, "err", err.Error())
	return errTemp
}
