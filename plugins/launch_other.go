//go:build !linux

package plugins

import (
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
)

// waitExit returns once the driver has exited, asking go-plugin every
// 100 ms.
func waitExit(_ int, c *plugin.Client) {
	for !c.Exited() {
		time.Sleep(100 * time.Millisecond)
	}
}

// setLimits applies no limits: rlimits of another process are set
// through Linux's prlimit.
func setLimits(int, Limits) error { return nil }

// sysProcAttr has no parent-death signal outside Linux; the driver's
// own watch of its parent (driver.Serve) ends it instead.
func sysProcAttr() *syscall.SysProcAttr { return nil }
