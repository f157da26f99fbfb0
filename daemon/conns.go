package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftos/weft/controlapi"
)

// ConnLimits bound the control API's connections, so that no client can
// hold the node's open files or goroutines: the `[api]` table of
// weftd.toml.
type ConnLimits struct {
	// IdleTimeout closes a connection with no call in flight (an HTTP/1
	// keep-alive between requests, an HTTP/2 connection without streams,
	// one that sent only its preface and SETTINGS) after this long.
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// BodyTimeout and BodyMinRate bound reading a request's body: it may
	// take BodyTimeout plus one second for every BodyMinRate bytes read.
	// A body slower than that (trickled) is cut and its connection closed.
	BodyTimeout time.Duration `toml:"body_timeout"`
	BodyMinRate int64         `toml:"body_min_rate"`
	// MaxConnections bounds each listener's open connections, counted
	// before any authentication. At the bound a new connection takes the
	// place of the one idle longest; when every one has a call in flight
	// the new one is closed at once.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerClient bounds the connections of one client: one
	// remote IP address on TCP, one user (the peer's uid) on the Unix
	// socket, with the same rule at the bound.
	MaxConnectionsPerClient int `toml:"max_connections_per_client"`
	// MaxRequestBytesInFlight bounds the bytes of request bodies the
	// control API holds at once, over every listener; a call past it fails
	// with resource_exhausted before its body is read.
	MaxRequestBytesInFlight int64 `toml:"max_request_bytes_in_flight"`
}

// Defaults of the [api] table.
const (
	DefaultIdleTimeout             = 2 * time.Minute
	DefaultBodyTimeout             = 30 * time.Second
	DefaultBodyMinRate             = 64 << 10
	DefaultMaxConnections          = 1024
	DefaultMaxConnectionsPerClient = 128
	// fdReserve is the open files kept out of the listeners' reach, for
	// the database, the drives, the compilation cache and the processes:
	// a flood of connections never takes them.
	fdReserve = 1024
)

// DefaultConnLimits returns the [api] table's defaults.
func DefaultConnLimits() ConnLimits {
	return ConnLimits{
		IdleTimeout:             DefaultIdleTimeout,
		BodyTimeout:             DefaultBodyTimeout,
		BodyMinRate:             DefaultBodyMinRate,
		MaxConnections:          DefaultMaxConnections,
		MaxConnectionsPerClient: DefaultMaxConnectionsPerClient,
		MaxRequestBytesInFlight: DefaultMaxRequestBytesInFlight,
	}
}

func (l ConnLimits) validate() error {
	switch {
	case l.IdleTimeout <= 0:
		return errors.New("api.idle_timeout must be positive")
	case l.BodyTimeout <= 0:
		return errors.New("api.body_timeout must be positive")
	case l.BodyMinRate <= 0:
		return errors.New("api.body_min_rate must be positive")
	case l.MaxConnections <= 0:
		return errors.New("api.max_connections must be positive")
	case l.MaxConnectionsPerClient <= 0 || l.MaxConnectionsPerClient > l.MaxConnections:
		return errors.New("api.max_connections_per_client must be positive and at most api.max_connections")
	case l.MaxRequestBytesInFlight < controlapi.ReadMaxBytes:
		return fmt.Errorf("api.max_request_bytes_in_flight must be at least %d, the largest request the API takes", controlapi.ReadMaxBytes)
	}
	return nil
}

// checkOpenFiles fails unless the process may open the listeners'
// connections and fdReserve files besides.
func checkOpenFiles(listeners, maxConns int) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("open files limit: %w", err)
	}
	need := uint64(listeners)*uint64(maxConns) + fdReserve
	if rl.Cur < need {
		return fmt.Errorf("%d listeners of api.max_connections = %d need %d open files with the %d weftd keeps for itself; "+
			"the limit is %d: raise it (LimitNOFILE= in the unit, ulimit -n) or lower api.max_connections",
			listeners, maxConns, need, fdReserve, rl.Cur)
	}
	return nil
}

// limitedListener bounds a listener's connections, overall and per client
// (ConnLimits.MaxConnections, MaxConnectionsPerClient). Its server's
// ConnState must be connState, which tells it which connections have a
// call in flight.
type limitedListener struct {
	net.Listener
	name      string
	log       *slog.Logger
	max, per  int
	clientKey func(net.Conn) string

	mu    sync.Mutex
	conns map[*limitedConn]struct{}
	// refused and evicted count connections closed at accept: refused
	// because every one of theirs was busy, evicted for a newcomer.
	refused, evicted atomic.Int64
	lastWarn         time.Time
}

// limitedConn is a connection a limitedListener accepted.
type limitedConn struct {
	net.Conn
	l      *limitedListener
	client string
	busy   bool      // a call in flight (StateActive), under l.mu
	since  time.Time // when it last turned idle or was accepted, under l.mu
	once   sync.Once
}

// NetConn returns the connection underneath, for those who need its type
// (the control API reads a Unix socket's peer credentials).
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and forgets it.
func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func newLimitedListener(inner net.Listener, name string, lim ConnLimits, log *slog.Logger) *limitedListener {
	key := remoteIP
	if inner.Addr().Network() == "unix" {
		key = peerUID
	}
	return &limitedListener{
		Listener:  inner,
		name:      name,
		log:       log,
		max:       lim.MaxConnections,
		per:       lim.MaxConnectionsPerClient,
		clientKey: key,
		conns:     map[*limitedConn]struct{}{},
	}
}

// Accept returns the next connection that fits the bounds. A connection
// that does not fit, and has no idle one to take the place of, is closed
// at once: the listener's backlog never fills with connections waiting.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, client: l.clientKey(c), since: time.Now()}
		victim, ok := l.admit(lc)
		if victim != nil {
			l.evicted.Add(1)
			victim.Conn.Close() // the server sees it fail and forgets it
		}
		if ok {
			return lc, nil
		}
		l.refused.Add(1)
		c.Close()
		l.warn()
	}
}

// admit adds c unless a bound forbids it and no idle connection can make
// room; victim is the idle connection to close for it.
func (l *limitedListener) admit(c *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	mine := 0
	var oldest, oldestMine *limitedConn
	for o := range l.conns {
		if o.client == c.client {
			mine++
		}
		if o.busy {
			continue
		}
		if oldest == nil || o.since.Before(oldest.since) {
			oldest = o
		}
		if o.client == c.client && (oldestMine == nil || o.since.Before(oldestMine.since)) {
			oldestMine = o
		}
	}
	switch {
	case mine >= l.per:
		if oldestMine == nil {
			return nil, false
		}
		victim = oldestMine
	case len(l.conns) >= l.max:
		if oldest == nil {
			return nil, false
		}
		victim = oldest
	}
	if victim != nil {
		delete(l.conns, victim)
	}
	l.conns[c] = struct{}{}
	return victim, true
}

// warn logs refused connections at most once a minute.
func (l *limitedListener) warn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.lastWarn) < time.Minute {
		return
	}
	l.lastWarn = time.Now()
	l.log.Warn("control API connections refused: every connection at the bound has a call in flight",
		"listener", l.name, "max_connections", l.max, "max_connections_per_client", l.per,
		"refused_total", l.refused.Load(), "evicted_total", l.evicted.Load())
}

// connState is the server's ConnState: it marks connections busy while a
// call is in flight and idle otherwise.
func (l *limitedListener) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive, http.StateIdle:
		l.mu.Lock()
		lc.busy = s == http.StateActive
		if !lc.busy {
			lc.since = time.Now()
		}
		l.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		lc.once.Do(func() {
			l.mu.Lock()
			delete(l.conns, lc)
			l.mu.Unlock()
		})
	}
}

// open is the number of connections the listener holds.
func (l *limitedListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// remoteIP is a TCP client's key: its IP address.
func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// peerUID is a Unix socket client's key: its user id, from SO_PEERCRED.
func peerUID(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ""
	}
	return "uid " + strconv.Itoa(int(cred.Uid))
}

// bodyDeadline is middleware that bounds reading each request's body:
// BodyTimeout, plus a second for every BodyMinRate bytes read. Past it the
// connection's reads fail, the handler sees an error reading the body,
// and the server closes the connection. Once the whole body is read the
// bound is lifted, so a long response (a Tap stream) is not cut; a body
// the handler left unread (a call refused before reading it) keeps the
// bound while the server reads the rest to reuse the connection.
func bodyDeadline(next http.Handler, lim ConnLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		start := time.Now()
		if err := rc.SetReadDeadline(start.Add(lim.BodyTimeout)); err != nil {
			// A writer without deadlines (none of the daemon's servers):
			// serve unbounded rather than not at all.
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, start: start, lim: lim, w: w, http1: r.ProtoMajor == 1}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody moves its connection's read deadline on as bytes arrive,
// and lifts it at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	start  time.Time
	lim    ConnLimits
	w      http.ResponseWriter
	http1  bool
	n      int64
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.lift()
	case err != nil:
		if b.http1 {
			// The rest of the body would be read as the next request:
			// close the connection after the reply.
			b.w.Header().Set("Connection", "close")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("request body: %d bytes in %v, slower than api.body_timeout and api.body_min_rate allow: %w",
				b.n, time.Since(b.start).Round(time.Millisecond), err)
		}
	case n > 0 && !b.lifted:
		allowed := b.lim.BodyTimeout + time.Duration(b.n)*time.Second/time.Duration(b.lim.BodyMinRate)
		b.rc.SetReadDeadline(b.start.Add(allowed))
	}
	return n, err
}

func (b *deadlineBody) lift() {
	if !b.lifted {
		b.lifted = true
		b.rc.SetReadDeadline(time.Time{})
	}
}
