package httpclient

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"
)

// FuzzParseRequest feeds request bodies to the parser: it never panics, a
// refusal is always a bad_request with a sentence, and what it accepts
// is a request the driver can make (a known method, an http or https URL
// with a host and no credentials, a positive timeout if any).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://example.com/x"}`,
		`{"method":"POST","url":"http://10.0.0.5:8080/p?q=1","headers":{"Accept":["text/plain","*/*"]},"timeout":"1.5s"}`,
		`{"url":"http://[::1]:80/"}`,
		`{"url":"http://u:p@example.com/"}`,
		`{"url":"ftp://example.com/"}`,
		`{"method":"BREW","url":"http://example.com"}`,
		`{"url":"http://example.com","headers":{"X":["a\r\nb"]}}`,
		`{"url":"http://example.com"} {}`,
		`{"url":"http://example.com","timeout":"-1s"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			var fl *failure
			if !errors.As(err, &fl) || fl.kind != KindBadRequest || fl.msg == "" {
				t.Fatalf("%q: refused with %#v, want a bad_request failure", b, err)
			}
			if len(fl.msg) > 4096 {
				t.Fatalf("%q: an error of %d bytes", b, len(fl.msg))
			}
			return
		}
		if !methods[r.Method] || r.u == nil || (r.u.Scheme != "http" && r.u.Scheme != "https") || r.u.Hostname() == "" || r.u.User != nil || r.timeout < 0 {
			t.Fatalf("%q: accepted %+v", b, r)
		}
		// What is accepted survives a round trip as the driver sends it.
		if _, err := url.Parse(r.u.String()); err != nil {
			t.Fatalf("%q: the URL does not parse again: %v", b, err)
		}
		if _, err := json.Marshal(r.Headers); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAllowEntry feeds allow-list entries to the configuration's parser:
// it never panics, and an entry it accepts allows some URL or address
// and never all of them.
func FuzzAllowEntry(f *testing.F) {
	for _, s := range []string{"example.com", "api.example.com:8443", "*.example.org", "10.0.0.5", "127.0.0.1:8080", "[::1]:8080", "[::1]", "*", "a:99999", "", "*.", "::ffff:10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseAllowEntry(s)
		if err != nil {
			return
		}
		if e.host == "" && !e.addr.IsValid() {
			t.Fatalf("%q: accepted an entry that names nothing: %+v", s, e)
		}
		l := allowList{e}
		if l.checkURL(&url.URL{Scheme: "https", Host: "unlisted.invalid"}) == nil && e.host != "unlisted.invalid" && !(e.wildcard && e.host == "invalid") {
			t.Fatalf("%q: allows a host it does not name", s)
		}
	})
}
