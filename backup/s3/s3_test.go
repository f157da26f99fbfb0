package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/s3"
	"github.com/weftos/weft/internal/s3test"
)

// fast is a retry policy for tests: a few tries, milliseconds apart.
var fast = s3.RetryPolicy{Attempts: 3, MaxElapsed: 10 * time.Second, Base: time.Millisecond, Max: 5 * time.Millisecond}

func newBackend(t *testing.T, srv *s3test.Server, endpoint, prefix string) *s3.Backend {
	t.Helper()
	b, err := s3.New(s3.Config{
		Name:      "test",
		Endpoint:  endpoint,
		Bucket:    srv.Buckets[0],
		Prefix:    prefix,
		Region:    srv.Region,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  s3.MinPartSize,
		Retry:     fast,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// onlyReader hides a reader's other methods (Seek, ReadAt, WriteTo).
type onlyReader struct{ io.Reader }

func TestRoundTrip(t *testing.T) {
	srv := s3test.Start(t, 1)
	b := newBackend(t, srv, srv.Endpoint, "weft")
	ctx := t.Context()
	// Sizes around the part size exercise single puts and multipart
	// ones, with the size known and not.
	for _, size := range []int{0, 1, 1000, s3.MinPartSize, 2*s3.MinPartSize + 12345} {
		for _, known := range []bool{true, false} {
			name := fmt.Sprintf("data/%d-%v", size, known)
			want := random(size)
			n := int64(size)
			var r io.Reader = bytes.NewReader(want)
			if !known {
				n, r = -1, onlyReader{r}
			}
			if err := b.Put(ctx, name, r, n); err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
			info, err := b.Stat(ctx, name)
			if err != nil || info.Size != int64(size) || info.Name != name {
				t.Fatalf("stat %s: %+v, %v; want size %d", name, info, err, size)
			}
			got, err := object.ReadAll(ctx, b, name)
			if err != nil {
				t.Fatalf("get %s: %v", name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("get %s: %d bytes differ from the %d put", name, len(got), len(want))
			}
		}
	}
	// A put of an existing name replaces it.
	if err := b.Put(ctx, "data/1-true", strings.NewReader("new"), 3); err != nil {
		t.Fatal(err)
	}
	if got, err := object.ReadAll(ctx, b, "data/1-true"); err != nil || string(got) != "new" {
		t.Fatalf("after a second put: %q, %v", got, err)
	}
	// The object is where Prefix+name says in the bucket ("weft" got
	// its slash).
	root := newBackend(t, srv, srv.Endpoint, "")
	if got, err := object.ReadAll(ctx, root, "weft/data/1-true"); err != nil || string(got) != "new" {
		t.Fatalf("weft/data/1-true from the bucket's root: %q, %v", got, err)
	}
}

func TestRangedGet(t *testing.T) {
	srv := s3test.Start(t, 1)
	b := newBackend(t, srv, srv.Endpoint, "p/")
	ctx := t.Context()
	data := random(100)
	if err := b.Put(ctx, "x", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		offset, length int64
		ok             bool
	}{
		{0, -1, true}, {0, 100, true}, {10, 20, true}, {90, -1, true}, {99, 1, true},
		{100, -1, true}, {100, 0, true}, {0, 0, true}, // empty, at the end or the start
		{95, 10, false}, {101, -1, false}, {101, 0, false}, {-1, 5, false},
	} {
		r, err := b.Get(ctx, "x", c.offset, c.length)
		if !c.ok {
			if err == nil {
				r.Close()
				t.Errorf("get %d bytes from %d: no error", c.length, c.offset)
			} else if !strings.Contains(err.Error(), `"x"`) {
				t.Errorf("get %d bytes from %d: %v does not name the object", c.length, c.offset, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("get %d bytes from %d: %v", c.length, c.offset, err)
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		end := int64(len(data))
		if c.length >= 0 {
			end = c.offset + c.length
		}
		if err != nil || !bytes.Equal(got, data[c.offset:end]) {
			t.Errorf("get %d bytes from %d: %d bytes, %v; want bytes %d to %d", c.length, c.offset, len(got), err, c.offset, end)
		}
	}
}

func names(t *testing.T, b *s3.Backend, prefix string) []string {
	t.Helper()
	var got []string
	err := b.List(t.Context(), prefix, func(i object.Info) error {
		got = append(got, fmt.Sprintf("%s:%d", i.Name, i.Size))
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return got
}

// TestListPrefixes: a target lists, changes and deletes only its own
// objects, though another target shares its bucket with a prefix that
// begins like its own.
func TestListPrefixes(t *testing.T) {
	srv := s3test.Start(t, 1)
	ctx := t.Context()
	a := newBackend(t, srv, srv.Endpoint, "a")
	ab := newBackend(t, srv, srv.Endpoint, "ab/")
	root := newBackend(t, srv, srv.Endpoint, "")
	for _, n := range []string{"data/2", "data/10", "index/x", "data/1", "data/1a"} {
		if err := a.Put(ctx, n, strings.NewReader(n), int64(len(n))); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"data/1", "data/3"} {
		if err := ab.Put(ctx, n, strings.NewReader("other"), 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Put(ctx, "a-file", strings.NewReader("root"), 4); err != nil {
		t.Fatal(err)
	}

	if got, want := names(t, a, ""), []string{"data/1:6", "data/10:7", "data/1a:7", "data/2:6", "index/x:7"}; !slices.Equal(got, want) {
		t.Fatalf("list a: %q, want %q (lexical, a's objects only)", got, want)
	}
	if got, want := names(t, a, "data/1"), []string{"data/1:6", "data/10:7", "data/1a:7"}; !slices.Equal(got, want) {
		t.Fatalf("list a data/1: %q, want %q", got, want)
	}
	if got := names(t, a, "nothing/"); len(got) != 0 {
		t.Fatalf("list a nothing/: %q, want none", got)
	}
	// An error of fn ends the listing and is returned as it is.
	stop := errors.New("stop here")
	var seen int
	err := a.List(ctx, "", func(object.Info) error { seen++; return stop })
	if err != stop || seen != 1 {
		t.Fatalf("list ended by fn: %v after %d objects, want %v after 1", err, seen, stop)
	}

	for _, n := range []string{"data/2", "data/10", "index/x", "data/1", "data/1a"} {
		if err := a.Delete(ctx, n); err != nil {
			t.Fatalf("delete %s: %v", n, err)
		}
	}
	if got := names(t, a, ""); len(got) != 0 {
		t.Fatalf("list a after deleting all: %q", got)
	}
	// ab's data/1 and the root's object are untouched.
	if got, want := names(t, ab, ""), []string{"data/1:5", "data/3:5"}; !slices.Equal(got, want) {
		t.Fatalf("list ab: %q, want %q", got, want)
	}
	if got, err := object.ReadAll(ctx, ab, "data/1"); err != nil || string(got) != "other" {
		t.Fatalf("ab's data/1: %q, %v", got, err)
	}
	if got, want := names(t, root, ""), []string{"a-file:4", "ab/data/1:5", "ab/data/3:5"}; !slices.Equal(got, want) {
		t.Fatalf("list the bucket: %q, want %q", got, want)
	}
}

func TestNotFound(t *testing.T) {
	srv := s3test.Start(t, 1)
	b := newBackend(t, srv, srv.Endpoint, "p")
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, object.ErrNotFound) {
			t.Fatalf("%s of a missing object: %v, want ErrNotFound", op, err)
		}
		for _, want := range []string{`"test"`, srv.Endpoint, srv.Buckets[0], `"p/"`, op, `"missing"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", op, err, want)
			}
		}
	}
	_, err := b.Stat(ctx, "missing")
	check("stat", err)
	_, err = b.Get(ctx, "missing", 0, -1)
	check("get", err)
	_, err = b.Get(ctx, "missing", 5, 10)
	check("get", err)
	check("delete", b.Delete(ctx, "missing"))
}

// proxy is a reverse proxy in front of the server whose handler may
// answer a request itself (return true) instead of passing it on.
type proxy struct {
	*httptest.Server
	requests atomic.Int64
}

func newProxy(t *testing.T, target string, fault func(n int64, w http.ResponseWriter, r *http.Request) bool) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // signed by the client
	}}
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.requests.Add(1)
		if fault != nil && fault(n, w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// fail500 answers the first n requests with a 500, having read their
// bodies (so that a put's reader has been consumed).
func fail500(first int64) func(int64, http.ResponseWriter, *http.Request) bool {
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n > first {
			return false
		}
		io.Copy(io.Discard, r.Body)
		http.Error(w, "injected", http.StatusInternalServerError)
		return true
	}
}

// drop closes the connection of the first n requests without an answer.
func drop(first int64) func(int64, http.ResponseWriter, *http.Request) bool {
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n > first {
			return false
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
		return true
	}
}

func TestRetryTransient(t *testing.T) {
	srv := s3test.Start(t, 1)
	ctx := t.Context()
	data := random(1000)
	for _, c := range []struct {
		name  string
		fault func(int64, http.ResponseWriter, *http.Request) bool
	}{
		{"500", fail500(2)},
		{"dropped", drop(2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProxy(t, srv.Endpoint, c.fault)
			b := newBackend(t, srv, p.URL, c.name)
			// Two failures, then the third try passes: put from a
			// seekable reader, then get, each in one call.
			if err := b.Put(ctx, "obj", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("put through two failures: %v", err)
			}
			if n := p.requests.Load(); n != 3 {
				t.Fatalf("%d requests, want 3 (two failed, one passed)", n)
			}
			got, err := object.ReadAll(ctx, b, "obj")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get: %d bytes, %v", len(got), err)
			}
		})
	}
	t.Run("exhausted", func(t *testing.T) {
		p := newProxy(t, srv.Endpoint, fail500(100))
		b := newBackend(t, srv, p.URL, "x")
		_, err := b.Stat(ctx, "obj")
		if err == nil || !strings.Contains(err.Error(), "after 3 tries") {
			t.Fatalf("stat through endless 500s: %v, want a failure after 3 tries", err)
		}
		if n := p.requests.Load(); n != 3 {
			t.Fatalf("%d requests, want 3 (the policy's attempts)", n)
		}
	})
	t.Run("unseekable", func(t *testing.T) {
		// A reader that cannot seek back is not put again once read.
		p := newProxy(t, srv.Endpoint, fail500(1))
		b := newBackend(t, srv, p.URL, "u")
		err := b.Put(ctx, "obj", onlyReader{bytes.NewReader(data)}, int64(len(data)))
		if err == nil || !strings.Contains(err.Error(), "cannot seek") {
			t.Fatalf("put of an unseekable reader through a 500: %v, want an error saying it cannot seek", err)
		}
		if n := p.requests.Load(); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
}

func TestWrongCredentials(t *testing.T) {
	srv := s3test.Start(t, 1)
	p := newProxy(t, srv.Endpoint, nil)
	wrong := "not-" + srv.SecretKey
	b, err := s3.New(s3.Config{
		Name: "wrong", Endpoint: p.URL, Bucket: srv.Buckets[0], Region: srv.Region,
		AccessKey: srv.AccessKey, SecretKey: wrong, Retry: fast,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Put(t.Context(), "obj", strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("put with a wrong secret succeeded")
	}
	if n := p.requests.Load(); n != 1 {
		t.Fatalf("%d requests for a refused put, want 1 (no retries)", n)
	}
	msg := err.Error()
	if strings.Contains(msg, wrong) || strings.Contains(msg, srv.SecretKey) || strings.Contains(b.String(), wrong) {
		t.Fatalf("the error or String has the secret key: %s", msg)
	}
	if !strings.Contains(msg, `"wrong"`) || !strings.Contains(msg, "signature") {
		t.Fatalf("error %q names no target or does not say what was refused", msg)
	}
	if !errors.Is(err, object.ErrDenied) || errors.Is(err, object.ErrUnavailable) {
		t.Fatalf("put with a wrong secret: %v, want object.ErrDenied", err)
	}
	// A bucket that is not there is not retried either.
	b3, err := s3.New(s3.Config{Name: "nobucket", Endpoint: p.URL, Bucket: "no-such-bucket", Region: srv.Region,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Retry: fast})
	if err != nil {
		t.Fatal(err)
	}
	before := p.requests.Load()
	if err := b3.Put(t.Context(), "obj", strings.NewReader("x"), 1); err == nil || errors.Is(err, object.ErrNotFound) {
		t.Fatalf("put to a missing bucket: %v, want an error other than ErrNotFound", err)
	}
	if n := p.requests.Load() - before; n != 1 {
		t.Fatalf("%d requests for a put to a missing bucket, want 1", n)
	}
}

func TestTargetDown(t *testing.T) {
	srv := s3test.Start(t, 1)
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	b := newBackend(t, srv, endpoint, "p")
	start := time.Now()
	_, err = b.Stat(t.Context(), "obj")
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "after 3 tries") || !errors.Is(err, object.ErrUnavailable) {
		t.Fatalf("stat of a target that is down: %v, want connection refused after 3 tries, object.ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), endpoint) {
		t.Fatalf("error %q does not name the endpoint", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v, the policy allows milliseconds", d)
	}
	// MaxElapsed also bounds the tries.
	slow, err := s3.New(s3.Config{Name: "down", Endpoint: endpoint, Bucket: "bkt", Region: "us-east-1",
		AccessKey: "a", SecretKey: "s",
		Retry: s3.RetryPolicy{Attempts: 1000, MaxElapsed: 50 * time.Millisecond, Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := slow.Stat(t.Context(), "obj"); !errors.Is(err, object.ErrUnavailable) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("stat with a 50 ms bound: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v with a 50 ms bound", d)
	}
}

func TestSlowTarget(t *testing.T) {
	srv := s3test.Start(t, 1)
	release := make(chan struct{})
	p := newProxy(t, srv.Endpoint, func(_ int64, w http.ResponseWriter, r *http.Request) bool {
		select { // hold every request until its client gives up
		case <-r.Context().Done():
		case <-release:
		}
		http.Error(w, "late", http.StatusServiceUnavailable)
		return true
	})
	t.Cleanup(func() { close(release) }) // runs before the proxy closes
	b := newBackend(t, srv, p.URL, "p")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.Stat(ctx, "obj")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stat of a target slower than the deadline: %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), `stat "obj"`) {
		t.Fatalf("error %q does not name the operation", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v, the deadline was 200 ms", d)
	}
	if n := p.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1 (no retry once the caller's deadline passed)", n)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{Endpoint: "http://user:hunter2@h", Bucket: "b", AccessKey: "a", SecretKey: "s"}, "user information"},
		{s3.Config{Endpoint: "ftp://h", Bucket: "b", AccessKey: "a", SecretKey: "s"}, "scheme"},
		{s3.Config{Endpoint: "http://h/b", Bucket: "b", AccessKey: "a", SecretKey: "s"}, "path"},
		{s3.Config{Endpoint: "h", AccessKey: "a", SecretKey: "s"}, "no bucket"},
		{s3.Config{Endpoint: "h", Bucket: "b"}, "no credentials"},
		{s3.Config{Endpoint: "h", Bucket: "b", AccessKey: "a", SecretKey: "s", PartSize: 1 << 20}, "part size"},
	} {
		_, err := s3.New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%s): %v, want an error about %s", c.cfg.Endpoint, err, c.want)
		}
	}
	b, err := s3.New(s3.Config{Name: "offsite", Endpoint: "s3.example.com", Bucket: "bk", Prefix: "weft",
		AccessKey: "AK", SecretKey: "very-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `s3 target "offsite" (https://s3.example.com, bucket "bk", prefix "weft/")`; got != want {
		t.Fatalf("String: %s, want %s", got, want)
	}
}
