package imap

import (
	"errors"
	"testing"
	"time"
)

func TestParseDateTime(t *testing.T) {
	cet := time.FixedZone("", 3600)
	pdt := time.FixedZone("", -7*3600)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"17-Jul-1996 02:44:25 -0700", time.Date(1996, 7, 17, 2, 44, 25, 0, pdt)}, // RFC 3501 6.3.11
		{" 1-Feb-2024 10:00:00 +0100", time.Date(2024, 2, 1, 10, 0, 0, 0, cet)},
		{"01-Feb-2024 10:00:00 +0100", time.Date(2024, 2, 1, 10, 0, 0, 0, cet)},
		{"1-feb-2024 10:00:00 +0000", time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)},
		{"29-FEB-2024 23:59:59 -0000", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := ParseDateTime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseDateTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		_, off := got.Zone()
		if _, woff := tc.want.Zone(); off != woff {
			t.Errorf("%q: zone offset %d, want %d", tc.in, off, woff)
		}
	}
	for _, bad := range []string{"", "17-Jul-1996", "17-Jul-1996 02:44:25", "17-Jul-1996 02:44:25 0700",
		"17-Jly-1996 02:44:25 -0700", "32-Jul-1996 02:44:25 -0700", "29-Feb-2023 02:44:25 -0700",
		"0-Jul-1996 02:44:25 -0700", "17-Jul-96 02:44:25 -0700", "17-Jul-1996 24:44:25 -0700",
		"17-Jul-1996 02:60:25 -0700", "17-Jul-1996 2:44:25 -0700", "17-Jul-1996 02:44:25 -0760",
		"17-Jul-1996  02:44:25 -0700", "17-Jul-1996 02:44:25 -0700 ", "117-Jul-1996 02:44:25 -0700",
		"  1-Jul-1996 02:44:25 -0700"} {
		if got, err := ParseDateTime(bad); err == nil || !errors.Is(err, ErrDate) {
			t.Errorf("ParseDateTime(%q) = %v, want an error", bad, got)
		}
	}
}

func TestFormatDateTime(t *testing.T) {
	tm := time.Date(2024, 2, 1, 9, 5, 3, 999, time.FixedZone("", -(4*3600+30*60)))
	if got := FormatDateTime(tm); got != "01-Feb-2024 09:05:03 -0430" {
		t.Errorf("FormatDateTime = %q", got)
	}
	back, err := ParseDateTime(FormatDateTime(tm))
	if err != nil || !back.Equal(tm.Truncate(time.Second)) {
		t.Errorf("round trip: %v %v", back, err)
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []string{"1-Feb-2024", "01-Feb-2024", "1-FEB-2024", "01-feb-2024"} {
		got, err := ParseDate(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseDate(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", " 1-Feb-2024", "1-Feb-24", "1-Feb-2024 ", "001-Feb-2024", "31-Apr-2024",
		"1-Febr-2024", "1/Feb/2024", "x-Feb-2024", "1-Feb-2O24"} {
		if got, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", bad, got)
		}
	}
}
