package controlapi

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCred reads the credentials of a Unix socket's peer, as they were
// when it connected.
func peerCred(c *net.UnixConn) (uid, gid, pid int, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, 0, false
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return 0, 0, 0, false
	}
	return int(cred.Uid), int(cred.Gid), int(cred.Pid), true
}
