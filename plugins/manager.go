package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
)

// Manager runs the node's declared drivers as processes of package
// drivers:weft. They are not in the persisted process table: the
// declarations bring them back, with their capabilities, at every start
// of the node.
type Manager struct {
	k     *kernel.Kernel
	store *procstore.Service
	log   *slog.Logger

	mu      sync.Mutex
	drivers []*entry // in declaration order
}

type entry struct {
	decl Decl
	proc *Process
	// refused is why the driver was not started (a binary whose checksum
	// is not its declaration's, or missing); nil once it runs.
	refused error
}

// NewManager checks decls (each valid, names unique) and makes a Manager
// for them; Start starts them.
func NewManager(k *kernel.Kernel, store *procstore.Service, log *slog.Logger, decls []Decl) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{k: k, store: store, log: log}
	seen := map[string]bool{}
	for _, d := range decls {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("driver %s: declared twice", d.Name)
		}
		seen[d.Name] = true
		e := &entry{decl: d}
		e.proc = &Process{decl: &e.decl, store: store, log: log.With("driver", d.Name), st: &state{}}
		m.drivers = append(m.drivers, e)
	}
	return m, nil
}

// Start starts every driver. A driver whose binary is refused (its
// checksum, or missing) is logged and listed with the reason, and the
// others start: one bad driver does not keep the node down. An error is
// returned only for what would leave the node inconsistent.
func (m *Manager) Start(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.drivers {
		if err := m.startLocked(e); err != nil {
			if errors.Is(err, errRefused) {
				continue
			}
			return err
		}
	}
	return nil
}

var errRefused = errors.New("refused")

func (m *Manager) startLocked(e *entry) error {
	if e.decl.Unusable != nil {
		e.refused = fmt.Errorf("driver %s: %w", e.decl.Name, e.decl.Unusable)
		m.log.Error("driver refused", "driver", e.decl.Name, "err", e.refused)
		return errRefused
	}
	if e.decl.Path != "" {
		if err := checkBinary(e.decl.Name, e.decl.Path, e.decl.SHA256); err != nil {
			e.refused = err
			m.log.Error("driver refused", "driver", e.decl.Name, "err", err)
			return errRefused
		}
	}
	e.refused = nil
	err := m.k.Start(kernel.Spec{
		ID:           ID(e.decl.Name),
		Process:      e.proc,
		OnExit:       kernel.OnExit{Kind: kernel.OnExitRestart},
		Public:       e.decl.Public,
		Capabilities: e.decl.Capabilities,
	})
	if err != nil {
		return fmt.Errorf("driver %s: %w", e.decl.Name, err)
	}
	return nil
}

// Stop stops every driver, last declared first, and waits for their
// runs to end (their subprocesses stopped), or for ctx.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, e := range slices.Backward(m.drivers) {
		if e.refused != nil {
			continue
		}
		if err := m.k.Kill(ctx, ID(e.decl.Name)); err != nil && !errors.Is(err, kernel.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ErrUnknown is the error for a driver name no declaration has.
var ErrUnknown = errors.New("no such driver")

// Restart stops driver name if it runs and starts it again, with a fresh
// backoff; a refused driver's binary is checked again.
func (m *Manager) Restart(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.drivers {
		if e.decl.Name != name {
			continue
		}
		if e.refused != nil {
			if err := m.startLocked(e); err != nil {
				if errors.Is(err, errRefused) {
					return e.refused
				}
				return err
			}
			return nil
		}
		return m.k.Restart(ctx, ID(name))
	}
	return fmt.Errorf("driver %q: %w", name, ErrUnknown)
}

// Info describes one driver.
type Info struct {
	Name string
	ID   kernel.ProcessId
	// Path is its binary; "" for a driver that runs in weftd.
	Path string
	// SHA256 is the declared checksum of its binary.
	SHA256 string
	Public bool
	// Process is the kernel's view (state, restarts, last error); its
	// State is zero when the driver was refused.
	Process kernel.ProcessInfo
	// Refused says why the driver was not started; "" when it was.
	Refused string
	// Pid of its running subprocess; 0 when none runs.
	Pid int
	// Calls counts requests handed to it, Failures those it could not
	// take at all, and RefusedOps its sends and store operations the node
	// refused (bad, oversized, without the capability, to no process).
	Calls, Failures, RefusedOps uint64
}

// List describes every declared driver, in declaration order.
func (m *Manager) List() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.drivers))
	for _, e := range m.drivers {
		in := Info{
			Name: e.decl.Name, ID: ID(e.decl.Name), Path: e.decl.Path, SHA256: e.decl.SHA256, Public: e.decl.Public,
			Pid:        int(e.proc.st.pid.Load()),
			Calls:      e.proc.st.calls.Load(),
			Failures:   e.proc.st.failures.Load(),
			RefusedOps: e.proc.st.refused.Load(),
		}
		if e.refused != nil {
			in.Refused = e.refused.Error()
		} else if pi, err := m.k.Process(in.ID); err == nil {
			in.Process = pi
		}
		out = append(out, in)
	}
	return out
}
