package imapserver

import (
	"slices"
	"strings"
	"testing"

	"pillarbox/internal/store"
)

func TestCheckName(t *testing.T) {
	ok := []string{"INBOX", "a", "a/b", "Ünïcödé/☺", "a.b", "...x", strings.Repeat("x", 255),
		strings.Repeat("a/", 31) + "a"}
	for _, n := range ok {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v, want ok", n, err)
		}
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/../b", "a/.", "a\x00b", "a\tb", "a\x7fb",
		"a\u0085b", "a*", "%", strings.Repeat("x", 256), strings.Repeat("a/", 32) + "a", "a\xffb"}
	for _, n := range bad {
		if err := checkName(n); err == nil {
			t.Errorf("checkName(%q) accepted", n)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"inbox": "INBOX", "InBoX/sub": "INBOX/sub", "inboxes": "inboxes", "a/inbox": "a/inbox", "INBOX": "INBOX",
	} {
		if got := canonicalName(in); got != want {
			t.Errorf("canonicalName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := parentNames("a/b/c"); !slices.Equal(got, []string{"a", "a/b"}) {
		t.Errorf("parentNames = %q", got)
	}
	if !isInferior("a/b", "a") || isInferior("ab", "a") || isInferior("a", "a") {
		t.Errorf("isInferior wrong")
	}
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		ref, pat, name string
		want           bool
	}{
		{"", "*", "a/b/c", true},
		{"", "%", "a/b", false},
		{"", "%", "a", true},
		{"", "a/%", "a/b", true},
		{"", "a/%", "a/b/c", false},
		{"", "a/*", "a/b/c", true},
		{"", "inbox", "INBOX", true},
		{"", "Inbox/%", "INBOX/x", true},
		{"", "inbox*", "INBOX/x", true},
		{"", "inboxes", "INBOXES", false},
		{"a/", "%", "a/b", true},
		{"a/", "/b", "a/b", true},
		{"", "a.b", "axb", false}, // regexp metacharacters are literal
		{"", "(x)+", "(x)+", true},
		{"", "*%*%*%*%*%*%*%*%*%*%b", strings.Repeat("a", 200), false},
	} {
		m, err := newMatcher(tc.ref, []string{tc.pat})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.match(tc.name); got != tc.want {
			t.Errorf("ref %q pattern %q on %q = %v, want %v", tc.ref, tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestListEntries(t *testing.T) {
	es := listEntries([]store.Mailbox{{Name: "b/c"}, {Name: "INBOX"}, {Name: "a"}, {Name: "b/c/d"}})
	var names []string
	for _, e := range es {
		names = append(names, e.name)
		if e.name == "b" && (e.mb != nil || !e.children) {
			t.Errorf("b: %+v, want a childful non-mailbox", e)
		}
	}
	if want := []string{"INBOX", "a", "b", "b/c", "b/c/d"}; !slices.Equal(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
}
