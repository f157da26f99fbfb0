package controlapi

import (
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/backup"
)

func phases(evs []*weftv1.RunBackupEvent) string {
	var ps []string
	for _, ev := range evs {
		ps = append(ps, ev.GetPhase())
	}
	return strings.Join(ps, ",")
}

// The throttle merges reports within a phase, holds one of the phase
// last sent for runEvery, never loses a phase, and keeps "done" for the
// last event.
func TestRunEventsThrottle(t *testing.T) {
	q := &runEvents{wake: make(chan struct{}, 1)}
	q.add(backup.Progress{Phase: "stage"})
	q.add(backup.Progress{Phase: "open"})
	q.add(backup.Progress{Phase: "upload", ScannedBytes: 1})
	q.add(backup.Progress{Phase: "upload", ScannedBytes: 2})
	select {
	case <-q.wake:
	default:
		t.Fatal("add did not wake the sender")
	}
	evs, wait := q.take(nil, time.Time{})
	if phases(evs) != "stage,open,upload" || evs[2].GetScannedBytes() != 2 || wait != 0 {
		t.Fatalf("first take: %v, wait %v", evs, wait)
	}
	last, lastAt := evs[2], time.Now()

	q.add(backup.Progress{Phase: "upload", ScannedBytes: 3})
	if evs, wait := q.take(last, lastAt); len(evs) != 0 || wait <= 0 || wait > runEvery {
		t.Fatalf("a report of the same phase at once: %v, wait %v", evs, wait)
	}
	if evs, wait := q.take(last, lastAt.Add(-runEvery)); phases(evs) != "upload" || evs[0].GetScannedBytes() != 3 || wait != 0 {
		t.Fatalf("a report of the same phase %v later: %v, wait %v", runEvery, evs, wait)
	}

	// "done" waits for the end, and does not hold back what precedes it.
	q.add(backup.Progress{Phase: "upload", ScannedBytes: 4})
	q.add(backup.Progress{Phase: "done", ScannedBytes: 4})
	if evs, _ := q.take(last, lastAt.Add(-runEvery)); phases(evs) != "upload" {
		t.Fatalf("take before done: %v", evs)
	}
	if evs, _ := q.take(last, time.Time{}); len(evs) != 0 {
		t.Fatalf("take sent done: %v", evs)
	}
	if evs := q.rest(); phases(evs) != "done" || evs[0].GetScannedBytes() != 4 {
		t.Fatalf("rest: %v", evs)
	}
	if evs := q.rest(); len(evs) != 0 {
		t.Fatalf("rest twice: %v", evs)
	}
}
