package httpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/httpclient"
)

// start runs the driver with config in a harness.
func start(t *testing.T, config string) *driver.Harness {
	t.Helper()
	h := driver.NewHarness(httpclient.New(), driver.HarnessOptions{Config: json.RawMessage(config)})
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

type answer struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Error   string              `json:"error"`
	Kind    string              `json:"kind"`
	blob    *weftv1.Blob
}

func do(t *testing.T, h *driver.Harness, body string, blob *weftv1.Blob) answer {
	t.Helper()
	resp, err := h.Request(t.Context(), driver.HarnessRequest{Body: []byte(body), Blob: blob, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var a answer
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		t.Fatalf("answer %q: %v", resp.Body, err)
	}
	a.blob = resp.Blob
	return a
}

func hostPort(t *testing.T, srv *httptest.Server) string {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// An allowed host: methods, headers both ways, the blob as the body both
// ways.
func TestAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Echo", r.Header.Get("X-Test"))
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), b)
	}))
	defer srv.Close()
	h := start(t, fmt.Sprintf(`{"allow":[%q]}`, hostPort(t, srv)))
	a := do(t, h, fmt.Sprintf(`{"url":%q,"headers":{"X-Test":["yes"]}}`, srv.URL+"/x"), nil)
	if a.Status != 200 || a.Headers["X-Echo"][0] != "yes" || a.blob == nil || string(a.blob.Bytes) != "GET /x  " || a.blob.Mime != "text/plain" {
		t.Fatalf("GET: %+v %+v", a, a.blob)
	}
	a = do(t, h, fmt.Sprintf(`{"method":"POST","url":%q}`, srv.URL+"/p"), &weftv1.Blob{Mime: "application/json", Bytes: []byte(`{"a":1}`)})
	if a.Status != 200 || string(a.blob.Bytes) != `POST /p application/json {"a":1}` {
		t.Fatalf("POST: %+v %q", a, a.blob.GetBytes())
	}
}

// What the configuration does not allow is refused, naming the host.
func TestRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	_, p, _ := strings.Cut(port, ":")
	for _, c := range []struct{ allow, url, want string }{
		{`[]`, srv.URL, "not in the driver's allow list"},
		{`["example.com"]`, srv.URL, "not in the driver's allow list"},
		// A name that resolves to loopback is not enough: the list must
		// name the address.
		{fmt.Sprintf(`["localhost:%s"]`, p), "http://localhost:" + p + "/", "not public"},
		{fmt.Sprintf(`["127.0.0.1:%s"]`, p), srv.URL + "/away", "elsewhere.invalid"},
		{fmt.Sprintf(`["127.0.0.1:%s"]`, p), "http://127.0.0.1:1/", "not in the driver's allow list"},
	} {
		h := start(t, fmt.Sprintf(`{"allow":%s}`, c.allow))
		a := do(t, h, fmt.Sprintf(`{"url":%q}`, c.url), nil)
		if a.Kind != "refused" || !strings.Contains(a.Error, c.want) {
			t.Errorf("allow %s, url %s: %+v, want refused %q", c.allow, c.url, a, c.want)
		}
	}
	// Named by address, loopback is fine; a hostname that resolves to an
	// address the list names is too.
	h := start(t, fmt.Sprintf(`{"allow":["127.0.0.1:%s","localhost"]}`, p))
	if a := do(t, h, fmt.Sprintf(`{"url":"http://localhost:%s/"}`, p), nil); a.Status != 200 {
		t.Errorf("localhost resolving to a named address: %+v", a)
	}
}

// Limits: the response's size, the request's blob, the deadline, the
// redirects, and busy.
func TestLimits(t *testing.T) {
	release, held := make(chan struct{}), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(make([]byte, 2000))
		case "/slow":
			if r.URL.RawQuery == "held" {
				held <- struct{}{}
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	defer close(release)
	h := start(t, fmt.Sprintf(`{"allow":[%q],"max_response_bytes":1000,"max_request_bytes":10,"max_redirects":2}`, hostPort(t, srv)))
	if a := do(t, h, fmt.Sprintf(`{"url":%q}`, srv.URL+"/big"), nil); a.Kind != "too_large" || a.blob != nil {
		t.Errorf("big response: %+v", a)
	}
	if a := do(t, h, fmt.Sprintf(`{"method":"PUT","url":%q}`, srv.URL), &weftv1.Blob{Bytes: make([]byte, 11)}); a.Kind != "too_large" {
		t.Errorf("big request: %+v", a)
	}
	if a := do(t, h, fmt.Sprintf(`{"url":%q,"timeout":"50ms"}`, srv.URL+"/slow"), nil); a.Kind != "timeout" {
		t.Errorf("slow: %+v", a)
	}
	if a := do(t, h, fmt.Sprintf(`{"url":%q}`, srv.URL+"/loop"), nil); a.Kind != "refused" || !strings.Contains(a.Error, "redirects") {
		t.Errorf("redirect loop: %+v", a)
	}

	busy := start(t, fmt.Sprintf(`{"allow":[%q],"max_in_flight":1}`, hostPort(t, srv)))
	done := make(chan answer, 1)
	go func() {
		resp, _ := busy.Request(context.Background(), driver.HarnessRequest{Body: []byte(fmt.Sprintf(`{"url":%q}`, srv.URL+"/slow?held")), Timeout: 20 * time.Second})
		var a answer
		if resp != nil {
			json.Unmarshal(resp.Body, &a)
		}
		done <- a
	}()
	<-held // the slow request is under way: the driver's one slot is taken
	if a := do(t, busy, fmt.Sprintf(`{"url":%q}`, srv.URL+"/big"), nil); a.Kind != "busy" {
		t.Errorf("a second request with max_in_flight 1: %+v, want busy", a)
	}
	release <- struct{}{}
	if a := <-done; a.Status != 200 {
		t.Errorf("the slow request: %+v", a)
	}
}

// Bad requests and bad configurations.
func TestBadInput(t *testing.T) {
	h := start(t, `{"allow":["example.com"]}`)
	for _, body := range []string{
		`not json`, `{"url":"http://example.com","x":1}`, `{"method":"BREW","url":"http://example.com"}`,
		`{"url":"ftp://example.com/"}`, `{"url":"http:///x"}`, `{"url":"http://u:p@example.com/"}`,
		`{"url":"http://example.com","headers":{"Bad Name":["x"]}}`, `{"url":"http://example.com","headers":{"X":["a\r\nb"]}}`,
		`{"url":"http://example.com","timeout":"-1s"}`, `{"url":"http://example.com"} {}`,
	} {
		if a := do(t, h, body, nil); a.Kind != "bad_request" {
			t.Errorf("%s: %+v, want bad_request", body, a)
		}
	}
	for _, cfg := range []string{`{"allow":["*"]}`, `{"alow":[]}`, `{"timeout":"soon"}`, `{"max_response_bytes":-1}`, `{"allow":["a:99999"]}`, `[]`} {
		d := driver.NewHarness(httpclient.New(), driver.HarnessOptions{Config: json.RawMessage(cfg)})
		if err := d.Start(t.Context()); err == nil {
			t.Errorf("config %s started", cfg)
			d.Stop()
		}
	}
}
