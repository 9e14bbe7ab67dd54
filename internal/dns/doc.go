// Package dns is Pillarbox's DNS layer: a Resolver interface for the MX,
// A/AAAA, TXT and TLSA lookups of outbound delivery and mail
// authentication, a real resolver that asks a configured server (or the
// system's), and helpers for tests.
package dns

import _ "github.com/miekg/dns" // the wire implementation
