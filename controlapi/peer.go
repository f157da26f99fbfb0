package controlapi

import (
	"context"
	"log/slog"
	"net"
)

// peer is who is on the other end of a connection, as the audit log
// names them: a Unix socket's peer credentials, or a remote address.
type peer struct {
	cred bool // uid, gid and pid are known (SO_PEERCRED)
	uid  int
	gid  int
	pid  int
	addr string // otherwise: the remote address
}

type peerKey struct{}

// ConnContext is http.Server.ConnContext for the daemon's listeners. On a
// Unix socket it records the peer's uid, gid and pid (SO_PEERCRED),
// otherwise the remote address; the audit log reads it from every call's
// context.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	p := peer{addr: remoteAddr(c)}
	// Under a listener's own wrapping (the daemon bounds connections), the
	// socket is underneath.
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	if uc, ok := c.(*net.UnixConn); ok {
		if uid, gid, pid, ok := peerCred(uc); ok {
			p.cred, p.uid, p.gid, p.pid = true, uid, gid, pid
		}
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func remoteAddr(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil || a.String() == "" {
		// A Unix socket's client is usually unnamed.
		return c.LocalAddr().Network()
	}
	return a.String()
}

// peerAttr is the audit log's "peer" attribute for the call's context:
// uid, gid and pid for a Unix peer, addr otherwise, "unknown" when the
// server did not use ConnContext.
func peerAttr(ctx context.Context) slog.Attr {
	p, ok := ctx.Value(peerKey{}).(peer)
	switch {
	case !ok:
		return slog.String("peer", "unknown")
	case p.cred:
		return slog.Group("peer", "uid", p.uid, "gid", p.gid, "pid", p.pid)
	default:
		return slog.Group("peer", "addr", p.addr)
	}
}
