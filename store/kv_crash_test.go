package store_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/weftos/weft/store"
)

var kvCrashKillsFlag = flag.Int("kvcrash.kills", 0,
	"kill-and-reopen rounds in TestKVCrashKillReopen (0: $WEFT_KV_CRASH_KILLS, else 50, or 10 with -short)")

const (
	kvCrashPkg   = "crash:test.os"
	kvCrashDB    = "crash"
	kvCrashSlots = 4
)

// kvCrashOps is transaction m of the kv crash child. It sets the two keys
// of slot m%4 to values that depend on m and on the key (up to 3 KiB, so a
// torn or mixed-up pair shows), appends a log entry for m, sets or deletes
// "flag" by the parity of m, and sets "seq" to m. All of it commits
// together or not at all.
func kvCrashOps(m uint64) []store.KVOp {
	slot := m % kvCrashSlots
	seq := strconv.FormatUint(m, 10)
	return []store.KVOp{
		{Key: fmt.Appendf(nil, "slot/%d/a", slot), Value: kvCrashValue(m, 'a')},
		{Key: fmt.Appendf(nil, "slot/%d/b", slot), Value: kvCrashValue(m, 'b')},
		{Key: fmt.Appendf(nil, "log/%012d", m), Value: []byte(seq)},
		{Key: []byte("flag"), Value: []byte(seq), Delete: m%2 == 1},
		{Key: []byte("seq"), Value: []byte(seq)},
	}
}

func kvCrashValue(m uint64, which byte) []byte {
	v := fmt.Appendf(nil, "%c m=%d|", which, m)
	size := int((m*2654435761 + uint64(which)) % 3072)
	for i := range size {
		v = append(v, byte(m)^byte(i*31)^which)
	}
	return v
}

// applyKVCrash applies transaction m to a model of the database.
func applyKVCrash(model map[string]string, m uint64) {
	for _, op := range kvCrashOps(m) {
		if op.Delete {
			delete(model, string(op.Key))
		} else {
			model[string(op.Key)] = string(op.Value)
		}
	}
}

// kvCrashChild runs in the re-executed test binary: it makes sure the
// database exists, then commits transactions from start on, printing
// each one's number once KVTx has returned, until it is killed.
func kvCrashChild(path, start string) int {
	m, err := strconv.ParseUint(start, 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kv crash child:", err)
		return 2
	}
	s, err := store.Open(path, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "kv crash child:", err)
		return 1
	}
	if err := s.CreateDB(kvCrashPkg, kvCrashDB); err != nil && !errors.Is(err, store.ErrDBExists) {
		fmt.Fprintln(os.Stderr, "kv crash child:", err)
		return 1
	}
	for ; ; m++ {
		if err := s.KVTx(kvCrashPkg, kvCrashDB, kvCrashOps(m)); err != nil {
			fmt.Fprintln(os.Stderr, "kv crash child:", err)
			return 1
		}
		// Unbuffered: once the write returns the line is in the pipe
		// and survives the SIGKILL.
		if _, err := fmt.Fprintf(os.Stdout, "%d\n", m); err != nil {
			return 1
		}
	}
}

func kvCrashKills(t *testing.T) int {
	return killCount(t, *kvCrashKillsFlag, "WEFT_KV_CRASH_KILLS", 10, 50)
}

// TestKVCrashKillReopen kills a child that commits KVTx transactions in a
// loop with SIGKILL at random points, reopens the database after each
// kill and checks that it holds exactly the transactions the child
// reported (plus, possibly, the one it was committing when it died),
// whole: every key of the database is compared with a model, so a lost,
// torn, partly applied or unreported transaction fails. The usage counted
// at Open must match, and bbolt's consistency check must pass. Every round
// uses the same file. The seed is logged; WEFT_CRASH_SEED replays it.
func TestKVCrashKillReopen(t *testing.T) {
	seed := crashSeed(t)
	kills := kvCrashKills(t)
	t.Logf("seed %d, %d kills (replay: WEFT_CRASH_SEED=%d)", seed, kills, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc908))
	path := filepath.Join(t.TempDir(), "data", store.FileName)

	model := map[string]string{} // the reported transactions, applied
	var next uint64              // first transaction not reported yet
	unreported := 0              // rounds where the unreported one had landed
	start := time.Now()
	for round := range kills {
		// Mostly kill in the middle of the write loop; one round in
		// eight right after start, while the child execs, opens the file
		// or creates the database.
		after, jitter := 1+rng.IntN(15), time.Duration(rng.IntN(1000))*time.Microsecond
		if rng.IntN(8) == 0 {
			after, jitter = 0, time.Duration(rng.IntN(20000))*time.Microsecond
		}
		reported := runCrashChild(t, "kvcrash", path, next, after, jitter)
		for _, m := range reported {
			if m != next {
				t.Fatalf("round %d: child reported transaction %d, want %d", round, m, next)
			}
			applyKVCrash(model, m)
			next++
		}
		inflight := maps.Clone(model)
		applyKVCrash(inflight, next)
		switch got := readKVCrash(t, round, path, next > 0); {
		case maps.Equal(got, model):
		case maps.Equal(got, inflight):
			model = inflight
			next++
			unreported++
		default:
			t.Fatalf("round %d: after %d reported transactions the database holds neither them nor the one in flight:\n%s",
				round, next, diffKV(got, model))
		}
	}
	t.Logf("%d kills, %d transactions on disk (%d of them unreported when the child died), %v",
		kills, next, unreported, time.Since(start).Round(time.Millisecond))
	if next == 0 {
		t.Fatal("no transaction was committed in any round")
	}
}

// readKVCrash reopens the database and returns its contents, after
// checking that the usage counted at Open matches them and that bbolt's
// consistency check passes. mustExist: a transaction was reported, so the
// database must be there.
func readKVCrash(t *testing.T, round int, path string, mustExist bool) map[string]string {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	got := map[string]string{}
	dbs, err := s.DBs(kvCrashPkg)
	if err != nil {
		t.Fatalf("round %d: DBs: %v", round, err)
	}
	switch {
	case len(dbs) == 1 && dbs[0] == kvCrashDB:
		got = dump(t, s, kvCrashPkg, kvCrashDB, 50)
	case len(dbs) == 0 && !mustExist:
	default:
		t.Fatalf("round %d: databases %q", round, dbs)
	}
	var size int64
	for k, v := range got {
		size += int64(len(k) + len(v))
	}
	if used := s.Usage().Used(kvCrashPkg); used != size {
		t.Errorf("round %d: Open counted %d bytes, the database holds %d", round, used, size)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("round %d: Close: %v", round, err)
	}

	checkBolt(t, round, path)
	return got
}

// diffKV describes how got differs from want, a few keys at most.
func diffKV(got, want map[string]string) string {
	var b bytes.Buffer
	n := 0
	note := func(format string, args ...any) {
		if n++; n <= 10 {
			fmt.Fprintf(&b, format+"\n", args...)
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			note("  %q missing", k)
		} else if g != w {
			note("  %q holds %.24q, want %.24q", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			note("  %q = %.24q unexpected", k, g)
		}
	}
	if n > 10 {
		fmt.Fprintf(&b, "  … %d differences in all\n", n)
	}
	return b.String()
}
