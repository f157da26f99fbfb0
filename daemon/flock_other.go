//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package daemon

import (
	"errors"
	"os"
)

// errNoFlock: weftd locks its data dir with flock, which this platform
// lacks.
var errNoFlock = errors.New("weftd cannot lock its data dir on this platform (no flock)")

func tryLock(*os.File) (bool, error) { return false, errNoFlock }

func unlock(*os.File) error { return errNoFlock }
