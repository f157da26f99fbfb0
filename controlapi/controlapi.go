package controlapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
)

// ReadMaxBytes bounds one request message: room for the largest valid
// package archive (packages.MaxPackageBytes) and the fields around it. A
// larger one fails with CodeResourceExhausted.
const ReadMaxBytes = packages.MaxPackageBytes + 1<<20

// compressMinBytes is the smallest response the API compresses (when the
// client accepts it).
const compressMinBytes = 16 << 10

// Config wires the control API to a node.
type Config struct {
	// Kernel is the node's kernel. Required.
	Kernel *kernel.Kernel
	// Packages is the node's package registry; nil makes every
	// PackageService call fail with CodeUnavailable.
	Packages *install.Registry
	// Store holds the packages' key-value databases; nil makes the
	// StoreService's database calls fail with CodeUnavailable.
	Store *store.Store
	// Drives holds the packages' file drives; nil makes the
	// StoreService's drive calls fail with CodeUnavailable.
	Drives *store.Drives
	// Drivers are the node's native drivers (a *plugins.Manager); nil
	// makes every DriverService call fail with CodeFailedPrecondition.
	Drivers Drivers
	// Backups is the node's backup engine (a *backup.Engine); nil, when
	// no target is declared, makes every BackupService call fail with
	// CodeFailedPrecondition.
	Backups Backups
	// Network is the node on the network (a *p2p.Node); nil, when the
	// network is off, makes every PeerService call fail with
	// CodeFailedPrecondition and GetInfo say so.
	Network Network
	// Version is weftd's version, as GetInfo reports it.
	Version string
	// Started is when the node started; zero is when New was called.
	Started time.Time
	// Logger receives the audit lines and internal errors; nil discards.
	Logger *slog.Logger
	// Token, when not empty, is required on every call as
	// "Authorization: Bearer <token>"; a call without it, or with
	// another, fails with CodeUnauthenticated.
	Token string
	// Stopping is closed when the node begins to stop: open Tap streams
	// end (cleanly) so that the HTTP server can shut down. Nil never
	// closes.
	Stopping <-chan struct{}
	// Interceptors run around every call, outermost first (the daemon
	// passes its metrics interceptor).
	Interceptors []connect.Interceptor
}

// server implements the nine services.
type server struct {
	k        *kernel.Kernel
	reg      *install.Registry
	st       *store.Store
	drives   *store.Drives
	drivers  Drivers
	backups  Backups
	net      Network
	ps       *procstore.Service // deletes databases and drives with their capabilities
	version  string
	started  time.Time
	log      *slog.Logger
	stopping <-chan struct{}
}

// New returns the control API as one http.Handler: the nine services
// over Connect, gRPC and gRPC-Web, and gRPC server reflection (v1 and
// v1alpha). Serve it with ConnContext as the server's ConnContext so that
// the audit log can name callers.
func New(cfg Config) (http.Handler, error) {
	if cfg.Kernel == nil {
		return nil, errors.New("controlapi: no kernel")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	started := cfg.Started
	if started.IsZero() {
		started = time.Now()
	}
	s := &server{k: cfg.Kernel, reg: cfg.Packages, st: cfg.Store, drives: cfg.Drives, drivers: cfg.Drivers, backups: cfg.Backups, net: cfg.Network, version: cfg.Version, started: started, log: log, stopping: cfg.Stopping}
	s.ps = procstore.New(cfg.Kernel, cfg.Store, cfg.Drives, log)

	// Outermost first: the daemon's interceptors, the audit log (which
	// sees the code the client gets), the mapping of domain errors, and
	// recovery from a panicking handler.
	interceptors := append([]connect.Interceptor(nil), cfg.Interceptors...)
	interceptors = append(interceptors, auditInterceptor{log: log}, errorsInterceptor{log: log})
	opts := []connect.HandlerOption{
		connect.WithInterceptors(interceptors...),
		connect.WithRecover(func(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
			log.Error("control API: handler panicked", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return connect.NewError(connect.CodeInternal, errors.New(internalMessage))
		}),
		connect.WithReadMaxBytes(ReadMaxBytes),
		// Gzip costs more than a whole call to echo takes otherwise
		// (most of it resetting the compressor; docs/performance.md):
		// compress only what is large enough to gain from it.
		connect.WithCompressMinBytes(compressMinBytes),
	}

	mux := http.NewServeMux()
	mux.Handle(weftv1connect.NewNodeServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewPackageServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewProcessServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewMessageServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewCapabilityServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewStoreServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewDriverServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewBackupServiceHandler(s, opts...))
	mux.Handle(weftv1connect.NewPeerServiceHandler(s, opts...))
	reflector := grpcreflect.NewStaticReflector(
		weftv1connect.NodeServiceName,
		weftv1connect.PackageServiceName,
		weftv1connect.ProcessServiceName,
		weftv1connect.MessageServiceName,
		weftv1connect.CapabilityServiceName,
		weftv1connect.StoreServiceName,
		weftv1connect.DriverServiceName,
		weftv1connect.BackupServiceName,
		weftv1connect.PeerServiceName,
	)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, opts...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, opts...))

	if cfg.Token == "" {
		return mux, nil
	}
	return &authHandler{
		next:   mux,
		want:   sha256.Sum256([]byte("Bearer " + cfg.Token)),
		errors: connect.NewErrorWriter(opts...),
		log:    log,
	}, nil
}

// authHandler refuses a call without the right bearer token before the
// call's body is read, so that an unauthenticated client cannot make the
// node buffer a large request.
type authHandler struct {
	next   http.Handler
	want   [sha256.Size]byte // of "Bearer <token>"
	errors *connect.ErrorWriter
	log    *slog.Logger
}

func (a *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Comparing digests takes the same time whatever the header holds,
	// its length included.
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	if subtle.ConstantTimeCompare(got[:], a.want[:]) == 1 {
		a.next.ServeHTTP(w, r)
		return
	}
	if mutating[r.URL.Path] {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "audit",
			slog.String("procedure", r.URL.Path), peerAttr(r.Context()),
			slog.String("outcome", connect.CodeUnauthenticated.String()))
	}
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(`this node requires "Authorization: Bearer <token>" with its token`))
	_ = a.errors.Write(w, r, err)
}
