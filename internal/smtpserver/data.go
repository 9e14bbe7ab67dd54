package smtpserver

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"

	smtp "github.com/emersion/go-smtp"
)

var errBareNewline = errors.New("bare CR or LF in message")

var (
	errBareData = smtpErr(554, [3]int{5, 6, 0}, "Bare CR or LF in message data not allowed")
	errLost     = smtpErr(421, [3]int{4, 4, 2}, "Connection lost during transfer")
)

// receive spools one message (DATA content already unstuffed by go-smtp,
// or the joined BDAT chunks), prepends our Received header, removes Bcc on
// submission, and hands it to Backend.Deliver. Its result is the reply.
func (c *conn) receive(tx *transaction, r io.Reader) error {
	f, err := c.s.opts.Backend.CreateSpool()
	if err != nil {
		_, _ = io.Copy(io.Discard, r)
		return c.backendErr("CreateSpool", err)
	}
	defer func() {
		name := f.Name()
		if err := f.Close(); err != nil && !errors.Is(err, fs.ErrClosed) {
			c.log.Warn("close spool", "err", err)
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("remove spool", "err", err)
		}
	}()

	bw := bufio.NewWriterSize(f, 32<<10)
	hdr := c.received(tx)
	mw := &msgWriter{
		w:         bw,
		checkCRLF: tx.env.Body != string(smtp.BodyBinaryMIME),
		stripBcc:  tx.info.Mode.submission(),
		inHeader:  true,
	}
	_, werr := io.WriteString(bw, hdr)
	var n int64
	if werr == nil {
		n, werr = io.Copy(mw, r)
		if werr == nil {
			werr = mw.Close()
		}
	}
	if werr != nil {
		return c.transferFailed(tx, r, werr)
	}
	if err := bw.Flush(); err != nil {
		c.log.Error("write spool", "err", err)
		return errTemp
	}
	tx.env.Size = int64(len(hdr)) + mw.written
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		c.log.Error("rewind spool", "err", err)
		return errTemp
	}
	id, err := c.s.opts.Backend.Deliver(c.ctx, &tx.info, &tx.env, f)
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
