package driver

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Conn is a running driver as weftd sees it: the Driver contract, plus
// the failures of what carries it (a driver subprocess that died, a
// driver that panicked in weftd). Client (a subprocess, over gRPC) and
// Local (in weftd) are its two implementations.
type Conn interface {
	Start(ctx context.Context, s Start) error
	// Handle fails only when the driver could not answer at all; an
	// answer of nothing is (nil, nil).
	Handle(ctx context.Context, r *Request) (*Response, error)
	// Health fails when the driver cannot serve.
	Health(ctx context.Context) error
}

// Local runs d in the calling process: the same contract as a
// subprocess, without the process. A panic in d is returned as an error
// (weftd then stops this run of the driver, as if it had crashed).
func Local(d Driver) Conn { return local{d} }

type local struct{ d Driver }

func (l local) Start(ctx context.Context, s Start) (err error) {
	defer recovered(&err)
	return l.d.Start(ctx, s)
}

func (l local) Handle(ctx context.Context, r *Request) (resp *Response, err error) {
	defer recovered(&err)
	return l.d.Handle(ctx, r), nil
}

func (l local) Health(ctx context.Context) (err error) {
	defer recovered(&err)
	if h, ok := l.d.(HealthChecker); ok {
		return h.Health(ctx)
	}
	return nil
}

func recovered(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("driver panicked: %v\n%s", v, debug.Stack())
	}
}
