package kernel

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForgetDropsARecordNotInTheTable(t *testing.T) {
	e := newEnv(t)
	id := e.start("kept:p:test", false, echo, func(s *Spec) { s.Persist = true })
	if err := e.k.Forget(id); !errors.Is(err, ErrExists) {
		t.Fatalf("Forget of a process in the table = %v, want ErrExists", err)
	}
	// A second kernel on the same store cannot make it again: Forget
	// drops the record and its state.
	if err := e.store.SetState(id.String(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, withStore(e.store))
	if _, err := e2.k.Restore(func(ProcessId, []byte) (Process, error) { return nil, errors.New("gone") }); err != nil {
		t.Fatal(err)
	}
	if err := e2.k.Forget(id); err != nil {
		t.Fatal(err)
	}
	recs, _ := e.store.Processes()
	if _, ok := recs[id.String()]; ok {
		t.Error("record still in the table store")
	}
	if _, ok, _ := e.store.GetState(id.String()); ok {
		t.Error("state still there")
	}
}

func TestStartSystem(t *testing.T) {
	e := newEnv(t)
	health := pid("health:sys:weft")
	if err := e.k.Start(Spec{ID: health, Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) })}); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("Start in sys:weft = %v, want ErrNotPermitted", err)
	}
	if err := e.k.StartSystem(Spec{ID: pid("x:p:test"), Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) })}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("StartSystem outside sys:weft = %v, want ErrInvalid", err)
	}
	if err := e.k.StartSystem(Spec{ID: health, Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) })}); err != nil {
		t.Fatal(err)
	}
	m, err := e.k.Send(context.Background(), &Request{Target: e.k.Address(health), Body: []byte("ping"), ExpectsResponse: time.Minute})
	if err != nil || string(m.Body) != "ping" {
		t.Fatalf("round trip through health:sys:weft = %v, %v", m, err)
	}
	if err := e.k.Kill(context.Background(), health); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("Kill of a system process = %v, want ErrNotPermitted", err)
	}
	if err := e.k.Remove(context.Background(), health); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("Remove of a system process = %v, want ErrNotPermitted", err)
	}
}
