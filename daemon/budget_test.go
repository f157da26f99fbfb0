package daemon

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

func TestBodyBudget(t *testing.T) {
	b := newBodyBudget(100, quiet)
	var readErr error
	var inside int64
	h := b.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
		inside = b.used.Load()
	}))
	held := int64(0) // by the test itself
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		t.Helper()
		readErr, inside = nil, 0
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if b.used.Load() != held {
			t.Fatalf("%d bytes still reserved after the call", b.used.Load())
		}
		return w
	}
	post := func(body string) *http.Request {
		r := httptest.NewRequest("POST", "/weft.v1.NodeService/GetInfo", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}

	// A known length is reserved up front, and refused over the budget
	// before the handler runs.
	if w := serve(post(strings.Repeat("x", 60))); readErr != nil || inside != 60 || w.Code != 200 {
		t.Errorf("60 bytes: %v, %d reserved inside, code %d", readErr, inside, w.Code)
	}
	if w := serve(post(strings.Repeat("x", 101))); w.Code == 200 || !strings.Contains(w.Body.String(), "resource_exhausted") || inside != 0 {
		t.Errorf("101 bytes: code %d, %q (handler ran: %v); want resource_exhausted before the handler", w.Code, w.Body, inside != 0)
	}
	// Held by another call, the budget refuses what would not fit beside it.
	if !b.reserve(50) {
		t.Fatal("reserve 50")
	}
	held = 50
	if w := serve(post(strings.Repeat("x", 51))); !strings.Contains(w.Body.String(), "resource_exhausted") {
		t.Errorf("51 bytes beside 50: %q", w.Body)
	}
	b.release(50)
	held = 0

	// An unknown length is reserved as it is read: the read past the
	// budget fails with resource_exhausted.
	r := post("")
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(strings.Repeat("y", 150))), -1
	serve(r)
	var ce *connect.Error
	if !errors.As(readErr, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Errorf("150 bytes of unknown length: %v, want resource_exhausted", readErr)
	}

	// A compressed body reserves the most a request may decompress to,
	// which does not fit this budget at all.
	r = post("z")
	r.Header.Set("Content-Encoding", "gzip")
	if w := serve(r); !strings.Contains(w.Body.String(), "resource_exhausted") {
		t.Errorf("a compressed body: %q, want resource_exhausted", w.Body)
	}
}
