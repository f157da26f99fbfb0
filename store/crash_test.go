package store_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftos/weft/store"
)

var crashKillsFlag = flag.Int("crash.kills", 0,
	"kill-and-reopen rounds in TestCrashKillReopen (0: $WEFT_CRASH_KILLS, else 20, or 5 with -short)")

// The crash child performs a fixed sequence of writes. Operation m writes
// counter n = m/2 either as the state (m even) or as the process record
// (m odd) of process crashKey(n % crashKeys). It prints m on its own line
// once the call has returned, and only then starts operation m+1, so at
// any moment at most one unreported write can have reached the disk.
const crashKeys = 3

type slot struct {
	record bool // process table rather than state
	key    int
}

type crashOp struct {
	m, n uint64
	slot slot
}

func opFor(m uint64) crashOp {
	n := m / 2
	return crashOp{m: m, n: n, slot: slot{record: m%2 == 1, key: int(n % crashKeys)}}
}

func crashKey(i int) string { return fmt.Sprintf("counter-%d:crash:test", i) }

// crashValue is what operation (record, n) writes: a header naming the
// counter, then up to 6 KiB of bytes that depend on it, so a torn or
// mixed-up value does not decode.
func crashValue(record bool, n uint64) []byte {
	kind := "state"
	if record {
		kind = "record"
	}
	v := fmt.Appendf(nil, "%s n=%d|", kind, n)
	size := int((n * 2654435761) % 6144)
	for i := range size {
		v = append(v, byte(n)^byte(i*31)^byte(i>>8))
	}
	return v
}

// decodeCrashValue returns the counter of a value written by crashValue,
// or an error when the value is not exactly such a value.
func decodeCrashValue(record bool, v []byte) (uint64, error) {
	head, _, found := bytes.Cut(v, []byte("|"))
	if !found {
		return 0, fmt.Errorf("no header in %d-byte value", len(v))
	}
	var kind string
	var n uint64
	if _, err := fmt.Sscanf(string(head), "%s n=%d", &kind, &n); err != nil {
		return 0, fmt.Errorf("bad header %q: %v", head, err)
	}
	if want := crashValue(record, n); !bytes.Equal(v, want) {
		return 0, fmt.Errorf("value for n=%d is corrupt (%d bytes, want %d)", n, len(v), len(want))
	}
	return n, nil
}

func (op crashOp) apply(s *store.Store) error {
	v := crashValue(op.slot.record, op.n)
	if op.slot.record {
		return s.PutProcess(crashKey(op.slot.key), v)
	}
	return s.SetState(crashKey(op.slot.key), v)
}

// crashChild runs in the re-executed test binary: it writes from
// operation start on until it is killed.
func crashChild(path, start string) int {
	m, err := strconv.ParseUint(start, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	s, err := store.Open(path, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 1
	}
	for ; ; m++ {
		if err := opFor(m).apply(s); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			return 1
		}
		// An unbuffered write: once it returns the line is in the pipe
		// and survives the SIGKILL.
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", m); err != nil {
			return 1
		}
	}
}

func crashKills(t *testing.T) int {
	return killCount(t, *crashKillsFlag, "WEFT_CRASH_KILLS", 5, 20)
}

// killCount is how many times a crash test kills its child: flag if set,
// else $env, else short under -short and normal otherwise.
func killCount(t *testing.T, flag int, env string, short, normal int) int {
	if flag > 0 {
		return flag
	}
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", env, v)
		}
		return n
	}
	if testing.Short() {
		return short
	}
	return normal
}

func crashSeed(t *testing.T) uint64 {
	if env := os.Getenv("WEFT_CRASH_SEED"); env != "" {
		seed, err := strconv.ParseUint(env, 10, 64)
		if err != nil {
			t.Fatalf("WEFT_CRASH_SEED=%q: %v", env, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestCrashKillReopen kills a writing child process with SIGKILL at
// random points, reopens the database after each kill and checks that it
// holds exactly the writes the child reported (plus, possibly, the one it
// was doing when it died), that every value decodes, and that bbolt's own
// consistency check passes. Every round uses the same file.
func TestCrashKillReopen(t *testing.T) {
	seed := crashSeed(t)
	kills := crashKills(t)
	t.Logf("seed %d, %d kills (replay: WEFT_CRASH_SEED=%d)", seed, kills, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	path := filepath.Join(t.TempDir(), "data", store.FileName)

	expect := map[slot]uint64{} // last write known to be on disk, per slot
	var next uint64             // first operation not reported yet
	unreported := 0             // rounds where the unreported write had landed
	start := time.Now()
	for round := range kills {
		// Mostly kill in the middle of the write loop; sometimes
		// right after start, while the child execs or opens the file.
		after, jitter := 1+rng.IntN(60), time.Duration(rng.IntN(1000))*time.Microsecond
		if rng.IntN(8) == 0 {
			after, jitter = 0, time.Duration(rng.IntN(20000))*time.Microsecond
		}
		reported := runCrashChild(t, "crash", path, next, after, jitter)
		for _, m := range reported {
			if m != next {
				t.Fatalf("round %d: child reported operation %d, want %d", round, m, next)
			}
			op := opFor(m)
			expect[op.slot] = op.n
			next++
		}
		inflight := opFor(next)
		if verifyCrashStore(t, round, path, expect, inflight) {
			expect[inflight.slot] = inflight.n
			unreported++
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d kills, %d reported writes, %d unreported writes found on disk, %v",
		kills, next, unreported, time.Since(start).Round(time.Millisecond))
}

// runCrashChild starts a child of the given mode ("crash", or "kvcrash"
// in kv_crash_test.go) at operation start, reads its reports, kills it
// with SIGKILL after `after` reports and a further jitter, and returns
// every operation it reported before it died.
func runCrashChild(t *testing.T, mode, path string, start uint64, after int, jitter time.Duration) []uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		childEnv+"="+mode, childPathEnv+"="+path, childStartEnv+"="+strconv.FormatUint(start, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// However the test ends, the child is killed and reaped.
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	t.Cleanup(func() { kill(); _ = cmd.Wait() })
	// A child that stops reporting (it should not) is killed too, so the
	// read below cannot hang; the test then fails on the short count.
	watchdog := time.AfterFunc(30*time.Second, kill)
	defer watchdog.Stop()

	var reported []uint64
	sc := bufio.NewScanner(stdout)
	if after == 0 {
		time.Sleep(jitter)
		kill()
	}
	for sc.Scan() {
		m, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			kill()
			t.Fatalf("child printed %q", sc.Text())
		}
		reported = append(reported, m)
		if len(reported) == after {
			time.Sleep(jitter)
			kill()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read child: %v", err)
	}
	_ = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by itself (%v) after %d of %d reports; stderr:\n%s",
			cmd.ProcessState, len(reported), after, stderr.String())
	}
	if len(reported) < after {
		t.Fatalf("child was killed by the watchdog after %d of %d reports; stderr:\n%s",
			len(reported), after, stderr.String())
	}
	return reported
}

// verifyCrashStore reopens the database and checks it against expect;
// the one write that may have landed without being reported is inflight.
// It reports whether inflight is on disk.
func verifyCrashStore(t *testing.T, round int, path string, expect map[slot]uint64, inflight crashOp) (inflightLanded bool) {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	check := func(sl slot, v []byte, ok bool) {
		want, has := expect[sl]
		if !ok {
			if has {
				t.Errorf("round %d: %+v lost: want n=%d, found nothing", round, sl, want)
			}
			return
		}
		n, err := decodeCrashValue(sl.record, v)
		switch {
		case err != nil:
			t.Errorf("round %d: %+v: %v", round, sl, err)
		case sl == inflight.slot && n == inflight.n:
			inflightLanded = true
		case !has:
			t.Errorf("round %d: %+v holds n=%d, but no write to it was reported", round, sl, n)
		case n < want:
			t.Errorf("round %d: %+v lost a reported write: holds n=%d, want n=%d", round, sl, n, want)
		case n > want:
			t.Errorf("round %d: %+v holds n=%d, newer than reported n=%d and not in flight", round, sl, n, want)
		}
	}
	for i := range crashKeys {
		v, ok, err := s.GetState(crashKey(i))
		if err != nil {
			t.Fatalf("round %d: GetState: %v", round, err)
		}
		check(slot{key: i}, v, ok)
	}
	procs, err := s.Processes()
	if err != nil {
		t.Fatalf("round %d: Processes: %v", round, err)
	}
	for i := range crashKeys {
		v, ok := procs[crashKey(i)]
		delete(procs, crashKey(i))
		check(slot{record: true, key: i}, v, ok)
	}
	for k := range procs {
		t.Errorf("round %d: unexpected process record %q", round, k)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("round %d: Close: %v", round, err)
	}

	checkBolt(t, round, path)
	return inflightLanded
}

// checkBolt runs bbolt's own check on the closed database at path: every
// page reachable once, the freelist consistent.
func checkBolt(t *testing.T, round int, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("round %d: bbolt open: %v", round, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("round %d: bbolt check: %v", round, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
