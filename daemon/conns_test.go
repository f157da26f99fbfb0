package daemon

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// fakeListener hands out the connections queued in it.
type fakeListener struct {
	net.Listener // nil: only Accept is used
	q            chan net.Conn
}

func (f *fakeListener) Accept() (net.Conn, error) {
	c := <-f.q
	if nc, ok := c.(*namedConn); ok && nc.onAccept != nil {
		nc.onAccept()
	}
	return c, nil
}

// namedConn is one end of a net.Pipe, with a client name for its key.
type namedConn struct {
	net.Conn
	client   string
	closed   bool
	onAccept func() // run as the listener hands it out
}

func (c *namedConn) Close() error { c.closed = true; return c.Conn.Close() }

func TestLimitedListener(t *testing.T) {
	f := &fakeListener{q: make(chan net.Conn, 16)}
	l := &limitedListener{
		Listener: f, name: "test", log: quiet, max: 4, per: 2,
		clientKey: func(c net.Conn) string { return c.(*namedConn).client },
		conns:     map[*limitedConn]struct{}{},
	}
	clock := time.Now()
	conn := func(client string) *namedConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &namedConn{Conn: a, client: client}
	}
	// accept queues the connections and returns the one Accept admits.
	accept := func(queue ...*namedConn) *limitedConn {
		t.Helper()
		for _, c := range queue {
			f.q <- c
		}
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if len(f.q) != 0 {
			t.Fatalf("Accept left %d queued", len(f.q))
		}
		lc := c.(*limitedConn)
		clock = clock.Add(time.Second)
		lc.since = clock // accepted in this order, a second apart
		return lc
	}

	// a's two connections, both with a call in flight: a's third is
	// refused, and b, another client, still gets in.
	a1, a2 := accept(conn("a")), accept(conn("a"))
	l.connState(a1, http.StateActive)
	l.connState(a2, http.StateActive)
	a3 := conn("a")
	b1 := accept(a3, conn("b"))
	if !a3.closed || l.refused.Load() != 1 || b1.client != "b" || l.open() != 3 {
		t.Fatalf("a's third: closed %v, refused %d, open %d; want it closed at once and b admitted", a3.closed, l.refused.Load(), l.open())
	}

	// b1 idle; b's next two: the second takes the place of b1, b's idle
	// one, since b may hold only two.
	l.connState(b1, http.StateIdle)
	b2 := accept(conn("b"))
	b3 := accept(conn("b"))
	if l.evicted.Load() != 1 || !b1.Conn.(*namedConn).closed || l.open() != 4 {
		t.Fatalf("b's third: evicted %d, b1 closed %v, open %d; want b1 evicted", l.evicted.Load(), b1.Conn.(*namedConn).closed, l.open())
	}

	// The listener is full (a1, a2, b2, b3). b2 and b3 idle, b2 longer: c
	// takes b2's place.
	l.connState(b2, http.StateIdle)
	l.connState(b3, http.StateIdle)
	b2.since, b3.since = clock.Add(time.Second), clock.Add(2*time.Second)
	c1 := accept(conn("c"))
	if l.evicted.Load() != 2 || !b2.Conn.(*namedConn).closed || b3.Conn.(*namedConn).closed {
		t.Fatalf("c at the bound: evicted %d, b2 closed %v, b3 closed %v; want b2, the one idle longest, evicted", l.evicted.Load(), b2.Conn.(*namedConn).closed, b3.Conn.(*namedConn).closed)
	}

	// Every connection busy: a newcomer is refused; once one closes, the
	// next gets in.
	l.connState(b3, http.StateActive)
	l.connState(c1, http.StateActive)
	d1 := conn("d")
	f.q <- d1
	l.connState(b3, http.StateClosed)
	// d1 was queued before b3 closed, but Accept looks at it only now:
	// there is room for it.
	if got := accept(); got.Conn != d1 {
		t.Fatalf("Accept admitted %v, want d1", got.Conn)
	}
	// Full (a1, a2, c1, d1) and all busy: d2 is refused and Accept takes
	// the next, e, which gets in because a1 closes as e arrives.
	l.connState(connOf(l, d1), http.StateActive)
	d2 := conn("d")
	e := conn("e")
	e.onAccept = func() { l.connState(a1, http.StateClosed) }
	if got := accept(d2, e); got.Conn != e || !d2.closed || l.refused.Load() != 2 {
		t.Fatalf("Accept admitted %v (d2 closed %v, refused %d); want d2 refused and e admitted after a1 closed", got.Conn, d2.closed, l.refused.Load())
	}
}

// connOf finds the limitedConn of c.
func connOf(l *limitedListener, c net.Conn) *limitedConn {
	for lc := range l.conns {
		if lc.Conn == c {
			return lc
		}
	}
	return nil
}
