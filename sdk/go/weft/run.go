package weft

import (
	"errors"
	"runtime/debug"
)

// Run registers body as the process. Call it from an init func (Go does
// not run main in a c-shared module); the node then calls the SDK's init
// export, which runs body. The process lives as long as body runs.
// Returning nil or ErrStopped (from Await) is a clean exit; any other
// error, or a panic, is logged and ends the process with an error. Either
// way the process's on_exit applies. Run panics if called twice.
func Run(body func() error) {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body != nil {
		panic("weft: Run (or Serve) called twice")
	}
	s.body = body
}

// Serve registers a process that hands every message to handle, in
// order, until the node stops it: Run(func() error { return Loop(handle) }).
func Serve(handle func(msg *Message) error) {
	Run(func() error { return Loop(handle) })
}

// Loop awaits messages and hands each to handle until the node stops the
// process, then returns nil. An error from handle is logged and the loop
// goes on; one that wraps ErrStopped ends it. Loop returns any other
// error Await returns.
func Loop(handle func(msg *Message) error) error {
	for {
		msg, err := Await()
		if err != nil {
			if errors.Is(err, ErrStopped) {
				return nil
			}
			return err
		}
		if err := handle(msg); err != nil {
			if errors.Is(err, ErrStopped) {
				return nil
			}
			Logf(LevelError, "handling %s %d from %s: %v", msg.Kind, msg.ID, msg.Source, err)
		}
	}
}

// main runs the registered body for the init export and returns its
// result: 0 for a clean exit, 1 for an error.
func (s *state) main() (rc int32) {
	s.mu.Lock()
	body := s.body
	s.mu.Unlock()
	if body == nil {
		Log(LevelError, "weft: no process body: call weft.Run or weft.Serve from an init func")
		return 1
	}
	defer func() {
		if v := recover(); v != nil {
			Logf(LevelError, "weft: process panicked: %v\n%s", v, debug.Stack())
			rc = 1
		}
	}()
	if err := body(); err != nil && !errors.Is(err, ErrStopped) {
		Logf(LevelError, "weft: process failed: %v", err)
		return 1
	}
	return 0
}
