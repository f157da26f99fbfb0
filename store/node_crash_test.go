package store_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/weftos/weft/store"
)

var nodeCrashKillsFlag = flag.Int("nodecrash.kills", 0,
	"kill-and-reopen rounds in TestNodeCrashKillReopen (0: $WEFT_NODE_CRASH_KILLS, else 50, or 10 with -short)")

const (
	nodeCrashProc  = "writer:crash:test.os"
	nodeCrashPkg   = "crash:test.os"
	nodeCrashName  = "crash"
	nodeCrashFile  = "dir/step"
	nodeCrashDrive = "drives"
)

// nodeCrashFileData is the drive file of step m: its number repeated to a
// size that depends on m (up to ~24 KiB), so a torn or mixed write shows.
func nodeCrashFileData(m uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "%015d\n", m), int(m%1500)+1)
}

func decodeNodeCrashFile(b []byte) (uint64, error) {
	if len(b) < 16 {
		return 0, fmt.Errorf("%d bytes", len(b))
	}
	m, err := strconv.ParseUint(string(b[:15]), 10, 64)
	if err != nil || !bytes.Equal(b, nodeCrashFileData(m)) {
		return 0, fmt.Errorf("not one whole version (%d bytes, starts %q)", len(b), b[:16])
	}
	return m, nil
}

// openNode opens a node's store the way weftd does: one quota, one
// barrier, the database and the drives under dir.
func openNode(dir string, lockTimeout time.Duration) (*store.Store, *store.Drives, error) {
	usage := store.NewUsage(0)
	barrier := &store.Barrier{}
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: usage, Barrier: barrier, LockTimeout: lockTimeout})
	if err != nil {
		return nil, nil, err
	}
	d, err := store.OpenDrives(filepath.Join(dir, nodeCrashDrive), usage)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	d.UseBarrier(barrier)
	return st, d, nil
}

// nodeCrashChild performs step m, m+1, … forever, each one the three
// writes a process makes in order — its state, a key-value transaction,
// a whole drive file — printing m once all three returned.
func nodeCrashChild(dir, start string) int {
	m, err := strconv.ParseUint(start, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node crash child:", err)
		return 2
	}
	st, d, err := openNode(dir, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node crash child:", err)
		return 1
	}
	for ; ; m++ {
		seq := strconv.FormatUint(m, 10)
		if err := st.SetState(nodeCrashProc, []byte(seq)); err != nil {
			fmt.Fprintln(os.Stderr, "node crash child: state:", err)
			return 1
		}
		if err := st.KVTx(nodeCrashPkg, nodeCrashName, []store.KVOp{
			{Key: []byte("seq"), Value: []byte(seq)},
			{Key: fmt.Appendf(nil, "log/%012d", m), Value: []byte(seq)},
		}); err != nil {
			fmt.Fprintln(os.Stderr, "node crash child: kv:", err)
			return 1
		}
		if err := d.WriteFile(nodeCrashPkg, nodeCrashName, nodeCrashFile, nodeCrashFileData(m)); err != nil {
			fmt.Fprintln(os.Stderr, "node crash child: drive:", err)
			return 1
		}
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", m); err != nil {
			return 1
		}
	}
}

// TestNodeCrashKillReopen is the store's crash test as a node lives it:
// one child writes, step after step, its process state, then a key-value
// transaction, then a drive file, and reports each step once all three
// returned; the test SIGKILLs it after a seeded random number of reports
// and delay, reopens everything and checks that every reported step is
// there in all three, that the step in flight landed at most as a prefix
// of the three writes (state ≥ database ≥ file), that the file is one
// whole version, that the transaction log holds every step up to the
// database's, and bbolt's own check.
func TestNodeCrashKillReopen(t *testing.T) {
	seed := crashSeed(t)
	kills := killCount(t, *nodeCrashKillsFlag, "WEFT_NODE_CRASH_KILLS", 10, 50)
	t.Logf("seed %d, %d kills (replay: WEFT_CRASH_SEED=%d)", seed, kills, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
	dir := filepath.Join(t.TempDir(), "node")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, d, err := openNode(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDB(nodeCrashPkg, nodeCrashName); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(nodeCrashPkg, nodeCrashName); err != nil {
		t.Fatal(err)
	}
	d.Close()
	st.Close()

	var next uint64 // first step not reported yet
	landed := 0     // rounds in which some of the step in flight had landed
	start := time.Now()
	for round := range kills {
		after, jitter := 1+rng.IntN(40), time.Duration(rng.IntN(3000))*time.Microsecond
		if rng.IntN(8) == 0 {
			after, jitter = 0, time.Duration(rng.IntN(20000))*time.Microsecond
		}
		for _, m := range runCrashChild(t, "nodecrash", dir, next, after, jitter) {
			if m != next {
				t.Fatalf("round %d: child reported step %d, want %d", round, m, next)
			}
			next++
		}
		if verifyNodeCrash(t, round, dir, next) {
			landed++
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d kills, %d reported steps, %d rounds with part of the step in flight on disk, %v",
		kills, next, landed, time.Since(start).Round(time.Millisecond))
}

// verifyNodeCrash checks the node's data after a kill; steps below next
// were reported. It reports whether any of step next had landed.
func verifyNodeCrash(t *testing.T, round int, dir string, next uint64) bool {
	t.Helper()
	st, d, err := openNode(dir, time.Second)
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	// -1: nothing written yet.
	num := func(what string, b []byte, ok bool) int64 {
		if !ok {
			return -1
		}
		n, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			t.Fatalf("round %d: %s holds %q", round, what, b)
		}
		return int64(n)
	}
	v, ok, err := st.GetState(nodeCrashProc)
	if err != nil {
		t.Fatal(err)
	}
	state := num("state", v, ok)
	v, ok, err = st.KVGet(nodeCrashPkg, nodeCrashName, []byte("seq"))
	if err != nil {
		t.Fatal(err)
	}
	kv := num("seq", v, ok)
	file := int64(-1)
	if b, err := d.ReadFile(nodeCrashPkg, nodeCrashName, nodeCrashFile); err == nil {
		m, err := decodeNodeCrashFile(b)
		if err != nil {
			t.Fatalf("round %d: drive file: %v", round, err)
		}
		file = int64(m)
	} else if next > 0 {
		t.Fatalf("round %d: drive file: %v", round, err)
	}
	last := int64(next) - 1
	for _, c := range []struct {
		what string
		n    int64
	}{{"state", state}, {"database", kv}, {"drive file", file}} {
		if c.n != last && c.n != last+1 {
			t.Errorf("round %d: %s holds step %d; reported up to %d", round, c.what, c.n, last)
		}
	}
	if state < kv || kv < file {
		t.Errorf("round %d: state %d, database %d, file %d: a later write landed without an earlier one", round, state, kv, file)
	}
	pairs, more, err := st.KVScan(nodeCrashPkg, nodeCrashName, []byte("log/"), nil, store.MaxKVScanPairs)
	for more && err == nil {
		var page []store.KVPair
		page, more, err = st.KVScan(nodeCrashPkg, nodeCrashName, []byte("log/"), pairs[len(pairs)-1].Key, store.MaxKVScanPairs)
		pairs = append(pairs, page...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(pairs)) != kv+1 {
		t.Errorf("round %d: %d log entries, want %d (steps 0…%d)", round, len(pairs), kv+1, kv)
	}
	for i, p := range pairs {
		if want := fmt.Sprintf("log/%012d", i); string(p.Key) != want || string(p.Value) != strconv.Itoa(i) {
			t.Errorf("round %d: log entry %d is %q=%q", round, i, p.Key, p.Value)
			break
		}
	}
	d.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	checkBolt(t, round, filepath.Join(dir, store.FileName))
	return state == last+1
}
