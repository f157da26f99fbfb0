package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// A part is one subsystem of the node. The node's parts start one after
// another in the order node.parts lists them and stop in the reverse
// order, so a part may use every part listed before it, from its start
// until its stop.
type part struct {
	// name names the part in errors and logs: "weftd: start NAME: …".
	name string
	// start brings the part up, keeping what it made in the node's fields.
	// On an error it must leave nothing of its own running: its stop is
	// not called.
	start func(ctx context.Context) error
	// stop takes it down once every part after it has stopped; nil when
	// there is nothing to undo. It is given the node's shutdown timeout.
	stop func(ctx context.Context) error
}

// started is the parts that have started, for stopping them in reverse.
type started struct {
	log     *slog.Logger
	timeout time.Duration // each part's stop gets a context with this deadline
	parts   []part
}

// startParts starts parts in order. It stops at the first that fails, or
// before the next when ctx is done, and then stops those already started
// (in reverse) and returns. The error names the part that failed, joined
// with any error from stopping the others; a ctx done before every part
// started is not an error. ok is true when every part started; the caller
// must then call stop.
func startParts(ctx context.Context, log *slog.Logger, timeout time.Duration, parts []part) (s *started, ok bool, err error) {
	s = &started{log: log, timeout: timeout}
	for _, p := range parts {
		if ctx.Err() != nil {
			return s, false, s.stop()
		}
		t0 := time.Now()
		if err := p.start(ctx); err != nil {
			return s, false, errors.Join(fmt.Errorf("weftd: start %s: %w", p.name, err), s.stop())
		}
		log.Debug("part started", "part", p.name, "took", time.Since(t0))
		s.parts = append(s.parts, p)
	}
	return s, true, nil
}

// stop stops the started parts in reverse order, each with its own
// deadline, and returns their errors joined, each naming its part. A part
// whose stop fails does not keep the others from stopping.
func (s *started) stop() error {
	var errs []error
	for i := len(s.parts) - 1; i >= 0; i-- {
		p := s.parts[i]
		if p.stop == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := p.stop(ctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("weftd: stop %s: %w", p.name, err))
			continue
		}
		s.log.Debug("part stopped", "part", p.name)
	}
	s.parts = nil
	return errors.Join(errs...)
}
