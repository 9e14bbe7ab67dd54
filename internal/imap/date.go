package imap

import (
	"errors"
	"strings"
	"time"
)

// ErrDate is returned (wrapped) by ParseDateTime and ParseDate.
var ErrDate = errors.New("imap: invalid date")

func dateErr(msg string) error { return errors.Join(ErrDate, errors.New(msg)) }

var months = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// dateTimeLayout is RFC 9051 9 date-time without its quotes.
const dateTimeLayout = "02-Jan-2006 15:04:05 -0700"

// FormatDateTime formats t as RFC 9051 9 date-time without the quotes
// ("02-Jan-2006 15:04:05 -0700"), in t's own zone. Write it with
// Writer.String.
func FormatDateTime(t time.Time) string { return t.Format(dateTimeLayout) }

// ParseDateTime parses RFC 9051 9 date-time without its quotes:
// date-day-fixed "-" date-month "-" date-year SP time SP zone. The day
// may be " 1", "01" or "1"; the month is matched without regard to case
// (common practice). The result is in the given zone (UTC for +0000).
func ParseDateTime(s string) (time.Time, error) {
	s = strings.TrimPrefix(s, " ")
	y, m, d, rest, err := parseDateText(s)
	if err != nil {
		return time.Time{}, err
	}
	// SP hh:mm:ss SP (+/-)hhmm
	if len(rest) != 15 || rest[0] != ' ' || rest[3] != ':' || rest[6] != ':' || rest[9] != ' ' ||
		(rest[10] != '+' && rest[10] != '-') {
		return time.Time{}, dateErr("bad time or zone")
	}
	hh, ok1 := num2(rest[1:3], 23)
	mi, ok2 := num2(rest[4:6], 59)
	ss, ok3 := num2(rest[7:9], 60)
	zh, ok4 := num2(rest[11:13], 23)
	zm, ok5 := num2(rest[13:15], 59)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return time.Time{}, dateErr("bad time or zone")
	}
	off := zh*3600 + zm*60
	if rest[10] == '-' {
		off = -off
	}
	loc := time.UTC
	if off != 0 {
		loc = time.FixedZone("", off)
	}
	return time.Date(y, m, d, hh, mi, ss, 0, loc), nil
}

// ParseDate parses RFC 9051 9 date-text "d-Mon-yyyy" (day "1" or "01",
// month in any case) as used by SEARCH BEFORE/ON/SINCE, and returns
// midnight UTC of that day.
func ParseDate(s string) (time.Time, error) {
	y, m, d, rest, err := parseDateText(s)
	if err != nil {
		return time.Time{}, err
	}
	if rest != "" {
		return time.Time{}, dateErr("trailing text")
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

// parseDateText parses day "-" Mon "-" yyyy at the start of s.
func parseDateText(s string) (y int, m time.Month, d int, rest string, err error) {
	i := 0
	for i < len(s) && i < 3 && isDigit(s[i]) {
		i++
	}
	if i == 0 || i > 2 {
		return 0, 0, 0, "", dateErr("bad day")
	}
	d, _ = num2(s[:i], 31)
	s = s[i:]
	if len(s) < 9 || s[0] != '-' || s[4] != '-' {
		return 0, 0, 0, "", dateErr("bad month or year")
	}
	mon := strings.ToLower(s[1:4])
	for k, name := range months {
		if name == mon {
			m = time.Month(k + 1)
		}
	}
	for k := 5; k < 9; k++ {
		if !isDigit(s[k]) {
			return 0, 0, 0, "", dateErr("bad year")
		}
		y = y*10 + int(s[k]-'0')
	}
	if m == 0 || d < 1 || time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Day() != d {
		return 0, 0, 0, "", dateErr("no such day")
	}
	return y, m, d, s[9:], nil
}

// num2 parses one or two digits up to max.
func num2(s string, max int) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, len(s) > 0 && n <= max
}
