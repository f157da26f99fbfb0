package plugins

import (
	"errors"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
)

// waitExit returns once process pid has exited: at once through a pidfd,
// or by asking go-plugin every 100 ms where pidfds are missing.
func waitExit(pid int, c *plugin.Client) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		for !c.Exited() {
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// setLimits applies l to process pid.
func setLimits(pid int, l Limits) error {
	for _, r := range []struct {
		res int
		v   int64
	}{{unix.RLIMIT_AS, l.AddressSpace}, {unix.RLIMIT_NOFILE, l.OpenFiles}, {unix.RLIMIT_CPU, l.CPUSeconds}} {
		if r.v < 0 {
			continue
		}
		lim := unix.Rlimit{Cur: uint64(r.v), Max: uint64(r.v)}
		if err := unix.Prlimit(pid, r.res, &lim, nil); err != nil {
			return err
		}
	}
	return nil
}

// sysProcAttr makes the kernel SIGKILL the driver when the thread that
// forked it ends.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
