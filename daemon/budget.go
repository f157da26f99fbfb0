package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/controlapi"
)

// DefaultMaxRequestBytesInFlight bounds the bytes of request bodies the
// control API holds at once, across every listener: room for two of the
// largest requests (controlapi.ReadMaxBytes, a whole package archive).
const DefaultMaxRequestBytesInFlight = 2 * controlapi.ReadMaxBytes

// largeRequest is the body size from which the memory a request took is
// given back to the operating system once it is done: the Go runtime
// would otherwise keep it for minutes.
const largeRequest = 16 << 20

// bodyBudget bounds the bytes of request bodies in flight on the node. A
// request reserves its Content-Length before anything of it is read; one
// without (a stream, HTTP/2 without the header) reserves as it is read.
// A compressed body reserves the most a message may decompress to, since
// that is what reading it may hold. Over the budget the call fails with
// resource_exhausted. Bytes are released when the call returns.
type bodyBudget struct {
	max  int64
	used atomic.Int64
	log  *slog.Logger

	freeing  atomic.Bool // a FreeOSMemory is running
	mu       sync.Mutex
	lastWarn time.Time
}

func newBodyBudget(max int64, log *slog.Logger) *bodyBudget {
	return &bodyBudget{max: max, log: log}
}

// reserve takes n bytes if they fit.
func (b *bodyBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// errExhausted is what a call over the budget gets.
func (b *bodyBudget) errExhausted(n int64) *connect.Error {
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
		"the node is reading %d bytes of request bodies and may hold %d (api.max_request_bytes_in_flight); this one needs %d more: try again later",
		b.used.Load(), b.max, n))
}

// compressed reports whether r's body is compressed, in any of the
// protocols the control API speaks.
func compressed(r *http.Request) bool {
	for _, h := range []string{"Content-Encoding", "Connect-Content-Encoding", "Grpc-Encoding"} {
		if v := r.Header.Get(h); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

// middleware bounds next's request bodies.
func (b *bodyBudget) middleware(next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := r.ContentLength
		if compressed(r) {
			need = controlapi.ReadMaxBytes
		}
		var held int64
		if need > 0 {
			if !b.reserve(need) {
				b.refused(w, r, errw, need)
				return
			}
			held = need
		} else if r.Body != nil && r.Body != http.NoBody {
			body := &budgetBody{ReadCloser: r.Body, b: b}
			r.Body = body
			defer func() { b.release(body.held) }()
		}
		defer func() {
			b.release(held)
			if held >= largeRequest {
				b.returnMemory()
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// refused answers a call over the budget without reading its body, and
// closes an HTTP/1 connection (whose unread body would be the next
// request).
func (b *bodyBudget) refused(w http.ResponseWriter, r *http.Request, errw *connect.ErrorWriter, need int64) {
	err := b.errExhausted(need)
	b.mu.Lock()
	if time.Since(b.lastWarn) >= time.Minute {
		b.lastWarn = time.Now()
		b.log.Warn("control API call refused: request bodies in flight at the budget",
			"max_request_bytes_in_flight", b.max, "in_flight", b.used.Load(), "needed", need)
	}
	b.mu.Unlock()
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	if errw.IsSupported(r) {
		errw.Write(w, r, err)
		return
	}
	http.Error(w, err.Message(), http.StatusServiceUnavailable)
}

// returnMemory gives the heap's free memory back to the operating
// system, on a goroutine of its own, once at a time.
func (b *bodyBudget) returnMemory() {
	if !b.freeing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer b.freeing.Store(false)
		t0 := time.Now()
		debug.FreeOSMemory()
		b.log.Debug("memory returned to the operating system after a large request", "took", time.Since(t0))
	}()
}

// budgetBody reserves its bytes as they are read.
type budgetBody struct {
	io.ReadCloser
	b    *bodyBudget
	held int64
}

func (r *budgetBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		if !r.b.reserve(int64(n)) {
			return 0, r.b.errExhausted(int64(n))
		}
		r.held += int64(n)
	}
	return n, err
}
