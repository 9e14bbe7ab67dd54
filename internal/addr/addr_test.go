package addr

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in         string
		local, dom string
		str        string // String(); "" = same as in
		canon      string // Canonical().String()
		tricks     bool
		needsUTF8  bool
		literal    bool
	}{
		{in: "user@example.com", local: "user", dom: "example.com", canon: "user@example.com"},
		{in: "User.Name+Tag@Example.COM", local: "User.Name+Tag", dom: "Example.COM", canon: "user.name+tag@example.com"},
		{in: "user@example.com.", local: "user", dom: "example.com.", canon: "user@example.com"},
		{in: `"a b"@x.example`, local: "a b", dom: "x.example", canon: `"a b"@x.example`},
		{in: `"abc"@x.example`, local: "abc", dom: "x.example", str: "abc@x.example", canon: "abc@x.example"},
		{in: `"a\"b\\c"@x.example`, local: `a"b\c`, dom: "x.example", canon: `"a\"b\\c"@x.example`},
		{in: `""@x.example`, local: "", dom: "x.example", canon: `""@x.example`},
		{in: `"user@other.example"@relay.example`, local: "user@other.example", dom: "relay.example",
			canon: `"user@other.example"@relay.example`, tricks: true},
		{in: "user%other.example@relay.example", local: "user%other.example", dom: "relay.example",
			canon: "user%other.example@relay.example", tricks: true},
		{in: "other!user@relay.example", local: "other!user", dom: "relay.example", canon: "other!user@relay.example", tricks: true},
		{in: "user@[192.0.2.1]", local: "user", dom: "[192.0.2.1]", canon: "user@[192.0.2.1]", literal: true},
		{in: "user@[IPv6:2001:DB8::1]", local: "user", dom: "[IPv6:2001:DB8::1]", canon: "user@[IPv6:2001:db8::1]", literal: true},
		{in: "user@[x-tag:abc]", local: "user", dom: "[x-tag:abc]", canon: "user@[x-tag:abc]", literal: true},
		{in: "josé@exämple.com", local: "josé", dom: "exämple.com", canon: "josé@xn--exmple-cua.com", needsUTF8: true},
		{in: "ÜSER@Bücher.example", local: "ÜSER", dom: "Bücher.example", canon: "üser@xn--bcher-kva.example", needsUTF8: true},
		{in: "用户@例子.广告", local: "用户", dom: "例子.广告", canon: "用户@xn--fsqu00a.xn--4rr70v", needsUTF8: true},
		{in: "user@xn--bcher-kva.example", local: "user", dom: "xn--bcher-kva.example", canon: "user@xn--bcher-kva.example"},
		{in: "!#$&'*+-/=?^_`{|}~@x.example", local: "!#$&'*+-/=?^_`{|}~", dom: "x.example", canon: "!#$&'*+-/=?^_`{|}~@x.example", tricks: true},
		{in: "a@1.2.3.4", local: "a", dom: "1.2.3.4", canon: "a@1.2.3.4"},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if a.Local != tt.local || a.Domain != tt.dom {
			t.Errorf("Parse(%q) = %q @ %q, want %q @ %q", tt.in, a.Local, a.Domain, tt.local, tt.dom)
		}
		want := tt.str
		if want == "" {
			want = tt.in
		}
		if got := a.String(); got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, want)
		}
		if got := a.Canonical().String(); got != tt.canon {
			t.Errorf("Parse(%q).Canonical() = %q, want %q", tt.in, got, tt.canon)
		}
		if a.HasRoutingTricks() != tt.tricks || a.NeedsSMTPUTF8() != tt.needsUTF8 || a.IsLiteral() != tt.literal {
			t.Errorf("Parse(%q): tricks %v utf8 %v literal %v", tt.in, a.HasRoutingTricks(), a.NeedsSMTPUTF8(), a.IsLiteral())
		}
		// String is parseable and gives the same address back.
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Errorf("Parse(%q.String()) = %+v, %v", tt.in, b, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"user", ErrSyntax},
		{"user@", ErrSyntax},
		{"@example.com", ErrSyntax},
		{"@a.example:user@b.example", ErrSourceRoute},
		{"@a.example,@b.example:user@c.example", ErrSourceRoute},
		{".user@x.example", ErrSyntax},
		{"user.@x.example", ErrSyntax},
		{"us..er@x.example", ErrSyntax},
		{"us er@x.example", ErrSyntax},
		{"us(er@x.example", ErrSyntax},
		{"user@x..example", ErrSyntax},
		{"user@x.example..", ErrSyntax},
		{"user@.x.example", ErrSyntax},
		{"user@-x.example", ErrSyntax},
		{"user@x-.example", ErrSyntax},
		{"user@x_y.example", ErrSyntax},
		{"user@x y.example", ErrSyntax},
		{"user@x.example@y.example", ErrSyntax},
		{`"unterminated@x.example`, ErrSyntax},
		{`"a"b@x.example`, ErrSyntax},
		{"\"a\x01\"@x.example", ErrSyntax},
		{`"a\` + "\x01" + `"@x.example`, ErrSyntax},
		{"a\xff@x.example", ErrSyntax},
		{"user@[300.1.1.1]", ErrSyntax},
		{"user@[IPv6:1.2.3.4]", ErrSyntax},
		{"user@[IPv6:fe80::1%eth0]", ErrSyntax},
		{"user@[1.2.3.4", ErrSyntax},
		{"user@[:x]", ErrSyntax},
		{"user@xn--invalid-.example", ErrSyntax},
		{strings.Repeat("a", 65) + "@x.example", ErrTooLong},
		{`"` + strings.Repeat("a", 63) + `"@x.example`, ErrTooLong},
		{"a@" + long + "." + long + "." + long + "." + long + ".example", ErrTooLong},
		{"a@" + strings.Repeat("b", 64) + ".example", ErrSyntax}, // label > 63
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
	// Boundary: 64-octet local part and a 254-octet mailbox are fine.
	ok64 := strings.Repeat("a", 64) + "@x.example"
	if _, err := Parse(ok64); err != nil {
		t.Errorf("64-octet local part: %v", err)
	}
	d := strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 60)
	if a := "a@" + d; len(a) != 254 {
		t.Fatalf("bad test: %d", len(a))
	} else if _, err := Parse(a); err != nil {
		t.Errorf("254-octet mailbox: %v", err)
	}
	if _, err := Parse("a@" + d + "e"); !errors.Is(err, ErrTooLong) {
		t.Errorf("255-octet mailbox: %v", err)
	}
}

func TestParseDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"Bücher.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"localhost", "localhost"},
	}
	for _, tt := range tests {
		got, err := ParseDomain(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", ".", "[1.2.3.4]", "a..b", "a b", "-a.example", "a.example.."} {
		if got, err := ParseDomain(bad); err == nil {
			t.Errorf("ParseDomain(%q) = %q, want an error", bad, got)
		}
	}
}

func TestBase(t *testing.T) {
	tests := []struct{ in, base, tag string }{
		{"user", "user", ""},
		{"user+tag", "user", "tag"},
		{"user+tag+more", "user", "tag+more"},
		{"user+", "user", ""},
		{"+tag", "+tag", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if b, tag := Base(tt.in); b != tt.base || tag != tt.tag {
			t.Errorf("Base(%q) = %q, %q; want %q, %q", tt.in, b, tag, tt.base, tt.tag)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"user@example.com", `"a b"@x`, "user@[IPv6:::1]", "josé@exämple.com", "@a:b@c",
		"a%b@c", "user@example.com.", "user@[1.2.3.4]", `"\""@x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		// A parsed address prints in a form that parses to the same address
		// (unless quoting pushed it over the length limits).
		b, err := Parse(a.String())
		if err == nil && b != a {
			t.Fatalf("Parse(%q) = %+v; reparsed %q = %+v", s, a, a.String(), b)
		}
		if err != nil && !errors.Is(err, ErrTooLong) {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, a.String(), err)
		}
		c := a.Canonical()
		if c.Canonical() != c {
			t.Fatalf("Canonical not idempotent for %q: %+v", s, c)
		}
		if strings.HasSuffix(c.Domain, ".") || !c.IsLiteral() && c.Domain != strings.ToLower(c.Domain) {
			t.Fatalf("Canonical domain %q", c.Domain)
		}
		Base(a.Local)
	})
}
