package mailfile

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMaildirRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	now := time.Date(2024, 10, 5, 7, 8, 9, 123456000, time.UTC)
	w, err := CreateMaildir(dir, MaildirOptions{Now: func() time.Time { return now }, Hostname: "host/with:odd", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []struct {
		flags []string
		date  time.Time
		body  string
	}{
		{[]string{FlagSeen, FlagFlagged, "$Junk"}, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), "Subject: a\r\n\r\none\r\n"},
		{nil, time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC), "Subject: b\r\n\r\ntwo\r\n"},
		{[]string{FlagAnswered, FlagDeleted, FlagDraft, FlagFlagged, FlagSeen}, time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), ""},
	}
	names := map[string]bool{}
	for _, m := range msgs {
		name, err := w.Write(&Message{Body: strings.NewReader(m.body), Flags: m.flags, Date: m.date})
		if err != nil {
			t.Fatal(err)
		}
		if names[name] || strings.Contains(strings.SplitN(name, ":2,", 2)[0], "/") {
			t.Errorf("bad or duplicate name %q", name)
		}
		names[name] = true
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
	cur, _ := os.ReadDir(filepath.Join(dir, "cur"))
	var curNames []string
	for _, e := range cur {
		curNames = append(curNames, e.Name())
	}
	wantNames := []string{
		"1728112089.M123456P" + strconv.Itoa(os.Getpid()) + `Q1.host\057with\072odd:2,FS`,
		"1728112089.M123456P" + strconv.Itoa(os.Getpid()) + `Q2.host\057with\072odd:2,`,
		"1728112089.M123456P" + strconv.Itoa(os.Getpid()) + `Q3.host\057with\072odd:2,DFRST`,
	}
	if !reflect.DeepEqual(curNames, wantNames) {
		t.Errorf("cur/ = %q\nwant %q", curNames, wantNames)
	}

	r, err := OpenMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != len(msgs) {
		t.Fatalf("Len = %d", r.Len())
	}
	for i, want := range msgs {
		m, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(m.Body)
		wantFlags := []string(nil)
		for _, f := range want.flags {
			if strings.HasPrefix(f, `\`) {
				wantFlags = append(wantFlags, f)
			}
		}
		slices.Sort(wantFlags)
		if string(body) != want.body || !m.Date.Equal(want.date) || !reflect.DeepEqual(m.Flags, wantFlags) {
			t.Errorf("message %d: %q %v %v; want %q %v %v", i, body, m.Date, m.Flags, want.body, want.date, wantFlags)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last: %v", err)
	}
}

func TestMaildirReadForeign(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	files := []struct {
		path, body string
		mtime      time.Time
	}{
		{"new/1000.A.host", "Subject: new\n\nLF body\n", time.Unix(1000, 0)},
		{"cur/1001.B.host:2,RSab", "Subject: cur\r\n\r\nCRLF body\r\n", time.Unix(1001, 0)},
		{"cur/1002.C.host:2,", "Subject: none\n\n", time.Unix(1002, 0)},
		{"cur/0999.D.host;2,T", "x\n", time.Unix(999, 0)},
		{"cur/.hidden", "ignored", time.Unix(1, 0)},
		{"tmp/1003.E.host", "ignored", time.Unix(1, 0)},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, f.mtime, f.mtime)
	}
	os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 $Forwarded\n1 work\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "cur", "subdir"), 0o700)

	r, err := OpenMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	type got struct {
		name  string
		flags []string
		date  int64
		body  string
	}
	want := []got{
		{"0999.D.host;2,T", []string{FlagDeleted}, 999, "x\r\n"},
		{"1000.A.host", nil, 1000, "Subject: new\r\n\r\nLF body\r\n"},
		{"1001.B.host:2,RSab", []string{"$Forwarded", FlagAnswered, FlagSeen, "work"}, 1001, "Subject: cur\r\n\r\nCRLF body\r\n"},
		{"1002.C.host:2,", nil, 1002, "Subject: none\r\n\r\n"},
	}
	for i, w := range want {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		b, _ := io.ReadAll(m.Body)
		g := got{m.Name, m.Flags, m.Date.Unix(), string(b)}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("message %d = %+v, want %+v", i, g, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last: %v", err)
	}
}

func TestMaildirNotMaildir(t *testing.T) {
	if _, err := OpenMaildir(t.TempDir()); err == nil {
		t.Error("a directory without cur/ and new/ was accepted")
	}
}

func TestMaildirVanishedFile(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateMaildir(dir, MaildirOptions{Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	n1, _ := w.Write(&Message{Body: strings.NewReader("a\r\n")})
	w.Write(&Message{Body: strings.NewReader("b\r\n")})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenMaildir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.Remove(filepath.Join(dir, "cur", n1)) // a mail client moved it away
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(m.Body); string(b) != "b\r\n" {
		t.Errorf("got %q", b)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last: %v", err)
	}
}
