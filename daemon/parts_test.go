package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder makes parts that note their starts and stops in one list.
type recorder struct{ events []string }

func (r *recorder) part(name string, startErr, stopErr error, withStop bool) part {
	p := part{name: name, start: func(context.Context) error {
		r.events = append(r.events, "start "+name)
		return startErr
	}}
	if withStop {
		p.stop = func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				r.events = append(r.events, "stop "+name+" without a deadline")
			}
			r.events = append(r.events, "stop "+name)
			return stopErr
		}
	}
	return p
}

var quiet = slog.New(slog.DiscardHandler)

func TestPartsStartInOrderAndStopInReverse(t *testing.T) {
	r := &recorder{}
	s, ok, err := startParts(context.Background(), quiet, time.Second, []part{
		r.part("a", nil, nil, true),
		r.part("b", nil, nil, false), // nothing to undo
		r.part("c", nil, nil, true),
	})
	if !ok || err != nil {
		t.Fatalf("startParts = %v, %v; want ok", ok, err)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop = %v", err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop a"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q", r.events, want)
	}
	if err := s.stop(); err != nil || len(r.events) != len(want) {
		t.Errorf("a second stop = %v and made events %q; want nothing done", err, r.events[len(want):])
	}
}

func TestAPartThatFailsStopsThoseBefore(t *testing.T) {
	r := &recorder{}
	boom := errors.New("boom")
	_, ok, err := startParts(context.Background(), quiet, time.Second, []part{
		r.part("store", nil, nil, true),
		r.part("kernel", nil, nil, true),
		r.part("control API", boom, nil, true),
		r.part("never", nil, nil, true),
	})
	if ok || !errors.Is(err, boom) || !strings.Contains(err.Error(), "weftd: start control API: boom") {
		t.Fatalf("startParts = %v, %v; want not ok and an error naming the control API", ok, err)
	}
	want := []string{"start store", "start kernel", "start control API", "stop kernel", "stop store"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q: the failed part is not stopped, the ones before it are, in reverse", r.events, want)
	}
}

func TestStopErrorsNameTheirPartsAndStopTheRest(t *testing.T) {
	r := &recorder{}
	e1, e2 := errors.New("e1"), errors.New("e2")
	s, ok, err := startParts(context.Background(), quiet, time.Second, []part{
		r.part("store", nil, e1, true),
		r.part("Wasm host", nil, nil, true),
		r.part("kernel", nil, e2, true),
	})
	if !ok || err != nil {
		t.Fatalf("startParts = %v, %v", ok, err)
	}
	err = s.stop()
	if !errors.Is(err, e1) || !errors.Is(err, e2) ||
		!strings.Contains(err.Error(), "weftd: stop kernel: e2") || !strings.Contains(err.Error(), "weftd: stop store: e1") {
		t.Errorf("stop = %v; want both errors, each naming its part", err)
	}
	want := []string{"start store", "start Wasm host", "start kernel", "stop kernel", "stop Wasm host", "stop store"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q", r.events, want)
	}
}

func TestStartingStopsWhenTheContextEnds(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	stopper := part{name: "stopper", start: func(context.Context) error {
		r.events = append(r.events, "start stopper")
		cancel()
		return nil
	}, stop: func(context.Context) error {
		r.events = append(r.events, "stop stopper")
		return nil
	}}
	_, ok, err := startParts(ctx, quiet, time.Second, []part{r.part("a", nil, nil, true), stopper, r.part("b", nil, nil, true)})
	if ok || err != nil {
		t.Fatalf("startParts = %v, %v; want not ok and no error", ok, err)
	}
	want := []string{"start a", "start stopper", "stop stopper", "stop a"}
	if !slices.Equal(r.events, want) {
		t.Errorf("events %q, want %q", r.events, want)
	}
}
