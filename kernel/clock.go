package kernel

import "time"

// Clock is the kernel's source of time: request timeouts and restart
// backoff run on it. The default is the real clock; tests may supply one
// they advance by hand.
type Clock interface {
	Now() time.Time
	// Since is Now().Sub(t); the real clock reads only its monotonic
	// clock for it, which costs half of Now.
	Since(t time.Time) time.Duration
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) Since(t time.Time) time.Duration           { return time.Since(t) }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
