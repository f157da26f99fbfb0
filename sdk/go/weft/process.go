package weft

import (
	"fmt"

	"github.com/weftos/weft/abi"
)

// GetState returns the process's persisted state, or ErrNoState.
func GetState() ([]byte, error) {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.read("state_get", s.node.stateGet)
	if e, ok := err.(*Error); ok && e.Code == abi.ENONE {
		return nil, ErrNoState
	}
	return b, err
}

// SetState replaces the process's state; it is durable when SetState
// returns. A state larger than the node allows fails with ErrLimit.
func SetState(v []byte) error {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	if rc := s.node.stateSet(v); rc < 0 {
		return s.fail("state_set", rc)
	}
	return nil
}

// ClearState removes the process's state.
func ClearState() error {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	if rc := s.node.stateClear(); rc < 0 {
		return s.fail("state_clear", rc)
	}
	return nil
}

// OnExit is what the node does when a spawned child exits.
type OnExit uint8

// On-exit policies of a spawned child.
const (
	OnExitNone    = OnExit(abi.OnExitNone)
	OnExitRestart = OnExit(abi.OnExitRestart)
)

// SpawnSpec describes a child to spawn. The child is
// Name:package:publisher of this process's package; parent and child may
// message each other, and the child stops when the parent stops.
type SpawnSpec struct {
	Name     string // the child's process name; empty for a fresh one
	WasmPath string // a module of this package, relative to its root ("/child.wasm")
	OnExit   OnExit
	Public   bool
	// Capabilities for the child; this process must hold each.
	Capabilities []Capability
}

// maxProcessID bounds a process id's text: two names of 64 bytes and a
// publisher of 253, with their colons, rounded up.
const maxProcessID = 512

// Spawn starts a child and returns its process id
// (name:package:publisher), which Request accepts as a target.
func Spawn(spec SpawnSpec) (string, error) {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	as := abi.SpawnSpec{
		Name:         spec.Name,
		WasmPath:     spec.WasmPath,
		OnExit:       uint8(spec.OnExit),
		Public:       spec.Public,
		Capabilities: toABICaps(spec.Capabilities),
	}
	enc := abi.AppendSpawn(s.out[:0], &as)
	defer s.release(enc)
	var out [maxProcessID]byte
	n := s.node.spawn(enc, out[:])
	if n < 0 {
		return "", s.fail("spawn", n)
	}
	if int(n) > len(out) { // cannot happen with valid names; the child runs
		return "", &Error{Code: abi.EINTERNAL, Op: "spawn", Detail: fmt.Sprintf("child's process id is %d bytes, more than %d", n, len(out))}
	}
	return string(out[:n]), nil
}

// Capabilities returns the capabilities the process holds.
func Capabilities() ([]Capability, error) {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.read("caps_read", s.node.capsRead)
	if err != nil {
		return nil, err
	}
	cs, err := abi.DecodeCaps(b)
	if err != nil {
		return nil, &Error{Code: abi.EINTERNAL, Op: "caps_read", Detail: err.Error()}
	}
	return fromABICaps(cs), nil
}

// Drop gives up the process's own copy of c. Other holders keep theirs.
func Drop(c Capability) error {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := abi.AppendCap(s.out[:0], abi.Capability(c))
	defer s.release(enc)
	if rc := s.node.capDrop(enc); rc < 0 {
		return s.fail("cap_drop", rc)
	}
	return nil
}

// Self returns the process's own address, node@name:package:publisher
// (empty if the node would not say).
func Self() string {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self == "" {
		if b, err := s.read("self_read", s.node.selfRead); err == nil {
			s.self = string(b)
		}
	}
	return s.self
}

// Level is a log line's level.
type Level int32

// Log levels (docs/abi.md, log).
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes a line to the node's log. The node rate-limits it per
// process. (Standard output and standard error go to the log too, at
// info and warn.)
func Log(level Level, msg string) {
	sdk.node.log(int32(level), []byte(msg))
}

// Logf writes a formatted line to the node's log.
func Logf(level Level, format string, args ...any) {
	Log(level, fmt.Sprintf(format, args...))
}
