package pbconv_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// enumCase describes one enum of the kernel and its protobuf form, for
// testEnum.
type enumCase[K ~uint8, P ~int32] struct {
	field   string             // what the From function names in its *FieldError
	known   func(K) bool       // whether the kernel has this value
	to      func(K) P          // kernel to protobuf
	from    func(P) (K, error) // protobuf to kernel
	names   map[int32]string   // the schema's values, as protoc generates them
	unknown []P                // protobuf values the schema does not have
	name    func(K) string     // the schema's name for a kernel value
}

// testEnum checks that every value the kernel has converts to a distinct
// protobuf value of the same name and back; that a kernel value it does
// not have converts to unspecified (0); that every value the schema has
// converts to the kernel and back, so one added to either side without a
// conversion fails; and that unspecified and unknown protobuf values are
// refused with a *FieldError naming the field.
func testEnum[K ~uint8, P ~int32](t *testing.T, c enumCase[K, P]) {
	t.Helper()
	seen := make(map[P]K)
	for v := 0; v <= 255; v++ {
		k := K(v)
		pb := c.to(k)
		if !c.known(k) {
			if pb != 0 {
				t.Errorf("%d, not a kernel value, converts to %d, want unspecified", v, pb)
			}
			continue
		}
		if got := c.names[int32(pb)]; pb == 0 || got != c.name(k) {
			t.Errorf("kernel value %d converts to %d (%s), want %s", v, pb, got, c.name(k))
		}
		if prev, dup := seen[pb]; dup {
			t.Errorf("kernel values %d and %d both convert to %d", prev, k, pb)
		}
		seen[pb] = k
		back, err := c.from(pb)
		if err != nil || back != k {
			t.Errorf("kernel value %d: back from %d is %d, %v", v, pb, back, err)
		}
	}
	for v, name := range c.names {
		if v == 0 {
			continue
		}
		k, err := c.from(P(v))
		if err != nil {
			t.Errorf("schema value %s: %v", name, err)
			continue
		}
		if back := c.to(k); back != P(v) {
			t.Errorf("schema value %s converts to kernel %d and back to %d", name, k, back)
		}
	}
	if len(seen) != len(c.names)-1 {
		t.Errorf("the kernel has %d values, the schema %d besides unspecified", len(seen), len(c.names)-1)
	}
	k, err := c.from(0)
	if k != 0 {
		t.Errorf("unspecified converts to %d with the error", k)
	}
	wantFieldError(t, err, c.field, "unspecified")
	for _, pb := range c.unknown {
		k, err := c.from(pb)
		if k != 0 {
			t.Errorf("unknown %d converts to %d with the error", pb, k)
		}
		wantFieldError(t, err, c.field, "unknown")
	}
}

// known reports whether a kernel enum value has a name of its own: the
// kernel's String gives "Type(n)" for the others.
func known[K interface{ String() string }](typ string) func(K) bool {
	return func(k K) bool { return !strings.HasPrefix(k.String(), typ+"(") }
}

func TestProcessState(t *testing.T) {
	testEnum(t, enumCase[kernel.ProcState, weftv1.ProcessState]{
		field:   "state",
		known:   known[kernel.ProcState]("ProcState"),
		to:      pbconv.ProcessState,
		from:    pbconv.FromProcessState,
		names:   weftv1.ProcessState_name,
		unknown: []weftv1.ProcessState{-1, 5, 1 << 30},
		name:    func(s kernel.ProcState) string { return "PROCESS_STATE_" + strings.ToUpper(s.String()) },
	})
}

func TestEnvelopeKind(t *testing.T) {
	testEnum(t, enumCase[kernel.Kind, weftv1.EnvelopeKind]{
		field:   "kind",
		known:   known[kernel.Kind]("Kind"),
		to:      pbconv.EnvelopeKind,
		from:    pbconv.FromEnvelopeKind,
		names:   weftv1.EnvelopeKind_name,
		unknown: []weftv1.EnvelopeKind{-1, 4, 1 << 30},
		name:    func(k kernel.Kind) string { return "ENVELOPE_KIND_" + strings.ToUpper(k.String()) },
	})
}

// The on_exit kind is a string in the schema ("none", "restart" or
// "requests"), so it has no generated list of values: the kernel's names
// are the list.
func TestOnExitKind(t *testing.T) {
	name := func(k kernel.OnExitKind) string {
		s, _, _ := strings.Cut(kernel.OnExit{Kind: k}.String(), "(") // "requests(0)"
		return s
	}
	names := 0
	seen := make(map[string]bool)
	for v := 0; v <= 255; v++ {
		k := kernel.OnExitKind(v)
		s := pbconv.OnExitKind(k)
		if name(k) == "OnExitKind" {
			if s != "" {
				t.Errorf("%d, not a kernel kind, converts to %q, want \"\"", v, s)
			}
			continue
		}
		names++
		if s != name(k) || seen[s] {
			t.Errorf("kind %d converts to %q, want %q, once", v, s, name(k))
		}
		seen[s] = true
		back, err := pbconv.FromOnExitKind(s)
		if err != nil || back != k {
			t.Errorf("kind %d: back from %q is %d, %v", v, s, back, err)
		}
	}
	if names != 3 || !seen["none"] || !seen["restart"] || !seen["requests"] {
		t.Errorf("the kernel's kinds convert to %v; the schema documents none, restart and requests", seen)
	}

	k, err := pbconv.FromOnExitKind("")
	if k != 0 {
		t.Errorf(`FromOnExitKind("") = %d with the error`, k)
	}
	wantFieldError(t, err, "on_exit", "unspecified")
	for _, s := range []string{"None", "Restart", "restart ", "requests(0)", "\xff"} {
		k, err := pbconv.FromOnExitKind(s)
		if k != 0 {
			t.Errorf("FromOnExitKind(%q) = %d with the error", s, k)
		}
		wantFieldError(t, err, "on_exit", "unknown on_exit kind")
	}
	// A huge value comes back in the error cut.
	_, err = pbconv.FromOnExitKind(strings.Repeat("x", 1<<20))
	wantFieldError(t, err, "on_exit", "bytes cut")
	if n := len(err.Error()); n > echoed.MaxBytes+200 {
		t.Errorf("the error for a 1 MiB kind is %d bytes", n)
	}
}

func TestProcessInfo(t *testing.T) {
	started := time.Date(2025, 5, 1, 12, 0, 0, 7, time.UTC)
	parent := kernel.ProcessId{Name: "parent", Package: "chat", Publisher: "alice.os"}
	got := pbconv.ProcessInfo(kernel.ProcessInfo{
		ID:           kernel.ProcessId{Name: "child", Package: "chat", Publisher: "alice.os"},
		Parent:       &parent,
		State:        kernel.StateRestarting,
		Public:       true,
		Persisted:    true,
		OnExit:       kernel.OnExit{Kind: kernel.OnExitRestart},
		Restarts:     3,
		MailboxDepth: 4,
		Pending:      5,
		LastError:    "trap",
		Started:      started,
	})
	want := &weftv1.ProcessInfo{
		Id:           "child:chat:alice.os",
		Parent:       "parent:chat:alice.os",
		State:        weftv1.ProcessState_PROCESS_STATE_RESTARTING,
		Public:       true,
		Persisted:    true,
		OnExit:       "restart",
		Restarts:     3,
		MailboxDepth: 4,
		Pending:      5,
		LastError:    "trap",
		Started:      timestamppb.New(started),
	}
	if !proto.Equal(got, want) {
		t.Errorf("ProcessInfo = %v\nwant %v", got, want)
	}

	// No parent, never started, and counts the kernel never gives.
	got = pbconv.ProcessInfo(kernel.ProcessInfo{
		ID:       kernel.ProcessId{Name: "a", Package: "b", Publisher: "c"},
		State:    kernel.StateKilled,
		Restarts: -1, MailboxDepth: -2, Pending: -3,
	})
	want = &weftv1.ProcessInfo{Id: "a:b:c", State: weftv1.ProcessState_PROCESS_STATE_KILLED, OnExit: "none"}
	if !proto.Equal(got, want) {
		t.Errorf("ProcessInfo = %v\nwant %v", got, want)
	}
}
