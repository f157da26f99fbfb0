package kernel

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The name parsers meet untrusted text (manifests, API requests, the
// wire): they must never panic, and what they accept must print back to
// exactly the input and validate again.

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"our@echo:echo:examples", "a@b:c:d", "@", "x@y", "n.o-de@a:b:c.d", "a@b:c:d:e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if a.String() != s {
			t.Fatalf("ParseAddress(%q).String() = %q", s, a.String())
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate says %v", s, err)
		}
	})
}

func FuzzParseProcessId(f *testing.F) {
	for _, s := range []string{"echo:echo:examples", "a:b:c", "::", "a:b", "a-:b:c", "a:b:c.d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProcessId(s)
		if err != nil {
			return
		}
		if p.String() != s || p.Validate() != nil {
			t.Fatalf("ParseProcessId(%q) = %q", s, p)
		}
		if strings.ContainsAny(p.Name+p.Package, ".") {
			t.Fatalf("dot accepted in %q", s)
		}
	})
}

func FuzzParsePackageId(f *testing.F) {
	for _, s := range []string{"echo:examples", "a:b.c", ":", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePackageId(s)
		if err != nil {
			return
		}
		if p.String() != s || p.Validate() != nil {
			t.Fatalf("ParsePackageId(%q) = %q", s, p)
		}
	})
}

// FuzzCanonicalParams: canonical form is idempotent, and valid JSON.
func FuzzCanonicalParams(f *testing.F) {
	for _, s := range []string{`"messaging"`, `{"b":1,"a":[true,null]}`, `{"a":1,"a":2}`, `1e5`, `"\u0000"`, `[[[]]]`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalParams(s, 4096)
		if err != nil {
			return
		}
		again, err := CanonicalParams(c, 4096)
		if err != nil || again != c {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, c, again, err)
		}
	})
}

// QuoteJSON writes a string exactly as CanonicalParams does.
func FuzzQuoteJSON(f *testing.F) {
	for _, s := range []string{"", "index", `we"ird\pkg`, "tab\there\n", "é\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		q := QuoteJSON(s)
		canon, err := CanonicalParams(q, 0)
		if err != nil || canon != q {
			t.Fatalf("QuoteJSON(%q) = %s, not canonical (%s, %v)", s, q, canon, err)
		}
		var back string
		if err := json.Unmarshal([]byte(q), &back); err != nil || back != s {
			t.Fatalf("QuoteJSON(%q) = %s reads back as %q (%v)", s, q, back, err)
		}
	})
}
