package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/configuration.md carries the example config verbatim (with a fixed
// hostname): it must stay what Example prints.
func TestDocsMatchExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```toml\n")
	end := strings.LastIndex(doc, "```")
	if start < 0 || end <= start {
		t.Fatal("docs/configuration.md has no ```toml block")
	}
	host := regexp.MustCompile(`(?m)^hostname = ".*"$`)
	got := host.ReplaceAllString(doc[start+len("```toml\n"):end], `hostname = "H"`)
	want := host.ReplaceAllString(Example(), `hostname = "H"`)
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("docs/configuration.md is out of date: regenerate its toml block from `pillarbox config example`")
	}
}
