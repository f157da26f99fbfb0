package store_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/weftos/weft/store"
)

// The tests re-execute their own binary to get a second process: one that
// is killed mid-write (crash_test.go) and one that tries to open a
// database this process holds. childEnv selects the child's job.
const (
	childEnv      = "WEFT_STORE_TEST_CHILD" // "crash", "kvcrash", "nodecrash" or "lock"
	childPathEnv  = "WEFT_STORE_TEST_PATH"  // database file (nodecrash: data directory)
	childStartEnv = "WEFT_STORE_TEST_START" // crash: first operation number
)

// Exit codes of the lock child.
const (
	lockChildOpened = 0
	lockChildLocked = 3
	lockChildOther  = 4
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); mode {
	case "":
		os.Exit(m.Run())
	case "crash":
		os.Exit(crashChild(os.Getenv(childPathEnv), os.Getenv(childStartEnv)))
	case "kvcrash":
		os.Exit(kvCrashChild(os.Getenv(childPathEnv), os.Getenv(childStartEnv)))
	case "nodecrash":
		os.Exit(nodeCrashChild(os.Getenv(childPathEnv), os.Getenv(childStartEnv)))
	case "lock":
		os.Exit(lockChild(os.Getenv(childPathEnv)))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, mode)
		os.Exit(2)
	}
}

// lockChild tries to open path and reports the outcome in its exit code,
// with the error text on stdout.
func lockChild(path string) int {
	s, err := store.Open(path, store.Options{LockTimeout: 200 * time.Millisecond})
	switch {
	case err == nil:
		_ = s.Close()
		return lockChildOpened
	case errors.Is(err, store.ErrLocked):
		fmt.Println(err)
		return lockChildLocked
	default:
		fmt.Println(err)
		return lockChildOther
	}
}
