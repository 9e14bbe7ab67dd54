package smtpserver

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Write receives go-smtp's replies. Each complete line is checked,
// rewritten where go-smtp's code differs from the RFC (see rewrite),
// completed (EHLO keywords go-smtp cannot know about) and buffered; the
// buffer is flushed when we are about to wait for the client.
func (c *conn) Write(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logPanic("write", r)
			c.dead = true
			_ = c.rw.Close()
			n, err = len(p), nil
		}
	}()
	if c.dead {
		return len(p), nil // the session is over; go-smtp's last words go nowhere
	}
	c.out = append(c.out, p...)
	for {
		i := bytes.IndexByte(c.out, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(c.out[:i]), "\r")
		c.out = c.out[i+1:]
		c.replyLine(line)
	}
	return len(p), nil
}

// reply is one parsed reply line.
type reply struct {
	code  int
	last  bool   // "xyz text" rather than "xyz-text"
	enh   string // "x.y.z" or ""
	text  string
	plain bool // could not be parsed; passed on untouched
}

func parseReply(line string) reply {
	if len(line) < 4 || (line[3] != ' ' && line[3] != '-') {
		return reply{plain: true, text: line, last: true}
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return reply{plain: true, text: line, last: true}
	}
	r := reply{code: code, last: line[3] == ' ', text: line[4:]}
	if e, rest, ok := strings.Cut(r.text, " "); ok && isEnhanced(e) {
		r.enh, r.text = e, rest
	} else if isEnhanced(r.text) {
		r.enh, r.text = r.text, ""
	}
	return r
}

func isEnhanced(s string) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 {
		return false
	}
	for _, x := range p {
		if _, err := strconv.Atoi(x); err != nil || x == "" {
			return false
		}
	}
	return true
}

func (r reply) String() string {
	if r.plain {
		return r.text
	}
	sep := "-"
	if r.last {
		sep = " "
	}
	if r.enh == "" {
		return fmt.Sprintf("%03d%s%s", r.code, sep, r.text)
	}
	return fmt.Sprintf("%03d%s%s %s", r.code, sep, r.enh, r.text)
}

// badSequence are go-smtp v0.25.1's "502 5.5.1" texts for commands in the
// wrong order; RFC 5321 4.2.4/4.3.2 wants 503 for those (502 means "not
// implemented").
var badSequence = map[string]bool{
	"Please introduce yourself first.":         true,
	"MAIL not allowed during message transfer": true,
	"Missing MAIL FROM command.":               true,
	"RCPT not allowed during message transfer": true,
	"Missing RCPT TO command.":                 true,
	"DATA not allowed during message transfer": true,
	"DATA not allowed for BINARYMIME messages": true,
}

// rewrite maps go-smtp v0.25.1 replies to the codes RFC 5321, RFC 3463,
// RFC 3461 and RFC 4954 ask for. Transcript tests pin the result, so a
// go-smtp upgrade that changes its texts shows at once.
func rewrite(r reply) reply {
	switch {
	case r.code == 502 && r.enh == "5.5.1" && badSequence[r.text]:
		r.code = 503 // RFC 5321 4.3.2: bad sequence of commands
	case r.code == 501 && r.enh == "5.5.2" && r.text != "Invalid base64 data":
		r.enh = "5.5.4" // syntax error in parameters or arguments
	case (r.code == 500 || r.code == 504) && r.enh == "5.5.4" &&
		(strings.HasPrefix(r.text, "Unknown ") || strings.HasSuffix(r.text, "is not implemented")):
		r.code = 555 // RFC 5321 4.1.1.11: parameter not recognized
	case r.code == 500 && r.enh == "5.5.4":
		r.code = 501 // malformed parameter value
	case r.code == 502 && r.enh == "5.5.4": // AUTH without mechanism
		r.code = 501
	case r.code == 454 && r.text == "Invalid base64 data":
		r.code, r.enh = 501, "5.5.2" // RFC 4954 4
	case r.code == 501 && r.enh == "5.0.0" && r.text == "Negotiation cancelled":
		r.enh = "5.7.0" // RFC 4954 4: the client cancelled AUTH
	case r.code == 250 && strings.Contains(r.text, postmasterPlaceholder):
		// go-smtp echoes the address it parsed: not our stand-in.
		r.text = strings.ReplaceAll(r.text, postmasterPlaceholder, "<Postmaster>")
	}
	return r
}

// replyLine handles one reply line from go-smtp.
func (c *conn) replyLine(line string) {
	r := rewrite(parseReply(line))
	if c.verb == "EHLO" && r.code == 250 && strings.HasPrefix(r.text, "SIZE ") && c.lim.MaxMessageBytes > 0 {
		r.text = "SIZE " + strconv.FormatInt(c.lim.MaxMessageBytes, 10) // see newGeneration
	}
	first := c.respFirst
	c.respFirst = r.last
	if first && !r.plain && r.code == 250 {
		switch c.verb {
		case "EHLO":
			c.ehloReply(r)
			return
		case "HELO":
			// RFC 5321 4.1.1.1: "250 domain greeting", no enhanced code.
			c.greeted(false)
			fmt.Fprintf(c.bw, "250 %s Hello %s\r\n", c.s.opts.Hostname, c.heloArg)
			c.afterReply(250)
			return
		}
	}
	fmt.Fprintf(c.bw, "%s\r\n", r.String())
	if !r.last {
		return
	}
	switch r.code {
	case 354:
		c.mode, c.lineStart, c.dataCR = modeData, true, false
	case 334:
		c.mode = modeSASL
	}
	if r.code >= 400 {
		if c.verb == "MAIL" || c.verb == "RCPT" { // the refused address; never AUTH data
			c.log.Info("reply", "verb", c.verb, "command", c.lastLine, "code", r.code, "enhanced", r.enh, "text", r.text)
		} else {
			c.log.Info("reply", "verb", c.verb, "code", r.code, "enhanced", r.enh, "text", r.text)
		}
	}
	c.afterReply(r.code)
}

// ehloReply writes the first EHLO line with our name (RFC 5321 4.1.1.1:
// the reply starts with the server's domain) and the keywords that depend
// on the TLS state, which go-smtp does not see.
func (c *conn) ehloReply(r reply) {
	c.greeted(true)
	fmt.Fprintf(c.bw, "250-%s Hello %s\r\n", c.s.opts.Hostname, c.heloArg)
	switch {
	case c.s.opts.TLSConfig != nil && !c.info.TLS:
		fmt.Fprintf(c.bw, "250-STARTTLS\r\n") // RFC 3207
	case c.info.TLS:
		fmt.Fprintf(c.bw, "250-REQUIRETLS\r\n") // RFC 8689
	}
	if r.last { // go-smtp always lists keywords; be safe anyway
		fmt.Fprintf(c.bw, "250 ENHANCEDSTATUSCODES\r\n")
		c.respFirst = true
		c.afterReply(250)
	}
}

// greeted records a successful HELO/EHLO.
func (c *conn) greeted(esmtp bool) {
	c.info.Helo, c.esmtp = c.heloArg, esmtp
	c.log.Info("helo", "verb", c.verb, "helo", c.heloArg, "tls", c.info.TLS)
}
