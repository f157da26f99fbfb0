package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/driverv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/procstore"
)

// Process is a driver as the kernel knows it: a kernel.Process whose
// every run launches the driver, starts it, and hands it the requests
// addressed to it until the run ends.
type Process struct {
	decl  *Decl
	store *procstore.Service
	log   *slog.Logger
	st    *state
}

// state is what outlives a run, for listing.
type state struct {
	pid      atomic.Int64
	calls    atomic.Uint64 // requests handed to the driver
	failures atomic.Uint64 // requests the driver could not answer at all
	refused  atomic.Uint64 // sends and store operations of the driver's refused
}

// errExited is a run's end when its subprocess exits by itself.
var errExited = errors.New("the driver's process exited")

// maxMessage is the largest gRPC message between weftd and a driver:
// what the kernel lets a message carry, and room for the envelope.
func maxMessage(l kernel.Limits) int {
	return l.MaxBodyBytes + l.MaxMetadataBytes + l.MaxBlobBytes + l.MaxContextBytes +
		l.MaxMessageCapabilities*(l.MaxCapabilityParamsBytes+1024) + 1<<20
}

// Run launches the driver and serves it until ctx ends (the kernel stops
// it: nil) or the driver fails: its process exits, a health check fails,
// or a request cannot be carried to it. Requests the run had taken are
// then failed by the kernel (killed), and the driver's on_exit applies.
func (p *Process) Run(ctx context.Context, h *kernel.Handle) error {
	runCtx, end := context.WithCancelCause(ctx)
	defer end(nil)
	r, err := launch(p.decl, maxMessage(h.Limits()), p.log)
	if err != nil {
		return err
	}
	defer r.stop()
	p.st.pid.Store(int64(r.pid))
	defer p.st.pid.Store(0)
	if r.exited != nil {
		go func() {
			select {
			case <-r.exited:
				end(errExited)
			case <-runCtx.Done():
			}
		}()
	}

	node := driver.NewNode(&nodeConn{h: h, store: p.store, log: p.log, st: p.st})
	// Start gets the run's context, which an in-process driver keeps for
	// its run; StartTimeout bounds it by ending the run.
	started := make(chan error, 1)
	go func() {
		started <- r.conn.Start(runCtx, driver.Start{Address: h.Address().String(), NodeID: h.NodeID(), Config: p.decl.Config, Node: node})
	}()
	t := time.NewTimer(p.decl.StartTimeout)
	select {
	case err = <-started:
	case <-t.C:
		end(fmt.Errorf("start took longer than %v (start_timeout)", p.decl.StartTimeout))
		err = <-started
	}
	t.Stop()
	if err != nil {
		if c := context.Cause(runCtx); c != nil {
			err = c
		}
		return fmt.Errorf("driver %s: start: %w", p.decl.Name, err)
	}
	p.log.Debug("driver started", "pid", r.pid)
	go p.watchHealth(runCtx, end, r.conn)
	go p.serve(runCtx, end, h, r.conn)
	<-runCtx.Done()
	if ctx.Err() != nil {
		return nil // stopped by the kernel
	}
	return fmt.Errorf("driver %s: %w", p.decl.Name, context.Cause(runCtx))
}

// watchHealth ends the run when a health check fails or takes longer
// than HealthTimeout.
func (p *Process) watchHealth(ctx context.Context, end context.CancelCauseFunc, c driver.Conn) {
	t := time.NewTicker(p.decl.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, p.decl.HealthTimeout)
		err := c.Health(hctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			end(fmt.Errorf("health check failed: %w", err))
			return
		}
	}
}

// serve takes the run's requests from the mailbox and hands each to the
// driver on a goroutine of its own, at most max_pending_requests at once
// (past it the mailbox fills, and senders see mailbox_full).
func (p *Process) serve(ctx context.Context, end context.CancelCauseFunc, h *kernel.Handle, c driver.Conn) {
	slots := make(chan struct{}, h.Limits().MaxPendingRequests)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		m, err := h.Await()
		if err != nil {
			return
		}
		if m.Kind != kernel.KindRequest {
			continue // answers of Calls come back to their callers, not here
		}
		var d *kernel.Deferred
		if m.WantsResponse() {
			if d, err = h.Defer(); err != nil {
				p.log.Warn("driver: cannot defer a request", "id", m.ID, "from", m.Source().String(), "err", err)
				continue
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			p.handle(ctx, end, c, m, d)
		}()
	}
}

// handle hands one request to the driver and answers it with what the
// driver answers. d is nil for a request that expects no response.
func (p *Process) handle(ctx context.Context, end context.CancelCauseFunc, c driver.Conn, m *kernel.Message, d *kernel.Deferred) {
	p.st.calls.Add(1)
	hctx := ctx
	if d != nil {
		// The requester's deadline, counted from its send: an answer
		// after it would be late.
		var cancel context.CancelFunc
		hctx, cancel = context.WithDeadline(ctx, d.Deadline())
		defer cancel()
	}
	resp, err := c.Handle(hctx, driver.NewRequest(pbconv.Message(m)))
	if err != nil {
		if hctx.Err() != nil {
			return // the requester gave up, or the run is ending
		}
		p.st.failures.Add(1)
		// The driver could not take the request at all: it is broken.
		end(fmt.Errorf("request %d from %s: %w", m.ID, m.Source(), err))
		return
	}
	if d == nil || resp == nil {
		return
	}
	kr, err := pbconvResponse(resp)
	if err == nil {
		err = d.Respond(kr)
	}
	if err != nil && !errors.Is(err, kernel.ErrStopped) {
		p.st.refused.Add(1)
		p.log.Warn("driver: answer refused", "id", m.ID, "to", m.Source().String(), "err", err)
	}
}

// pbconvResponse converts a driver's answer for the kernel.
func pbconvResponse(r *driver.Response) (*kernel.Response, error) {
	pr, blob := r.Proto()
	kr, err := pbconv.Response(pr)
	if err != nil {
		return nil, err
	}
	kr.Blob = pbconv.FromBlob(blob)
	return kr, nil
}

// nodeConn is the Node a run's driver talks to: its sends go through
// the kernel as the driver's (Handle.Call, from any goroutine), its store
// operations through procstore with the driver's capabilities.
type nodeConn struct {
	h     *kernel.Handle
	store *procstore.Service
	log   *slog.Logger
	st    *state
}

func (n *nodeConn) Send(ctx context.Context, r *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	kr, err := pbconv.ToRequest(r.GetRequest(), r.GetTarget())
	if err != nil {
		n.st.refused.Add(1)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	kr.Blob = pbconv.FromBlob(r.GetBlob())
	m, err := n.h.Call(ctx, kr)
	var se *kernel.SendError
	switch {
	case errors.As(err, &se):
		n.st.refused.Add(1)
		out := &driverv1.SendResponse{Result: &driverv1.SendResponse_Error{Error: pbconv.SendError(se)}}
		if m != nil {
			out.Id = m.ID
		}
		return out, nil
	case errors.Is(err, kernel.ErrStopped):
		return nil, status.Error(codes.Unavailable, "the driver's run has ended")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, status.FromContextError(err).Err()
	case err != nil:
		n.st.refused.Add(1)
		n.log.Warn("driver: send refused", "target", r.GetTarget(), "err", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out := &driverv1.SendResponse{Id: m.ID}
	if m.Kind == kernel.KindResponse {
		pm := pbconv.Message(m)
		out.Result = &driverv1.SendResponse_Response{Response: pm.GetResponse()}
		out.Blob, out.Context = pm.GetBlob(), pm.GetContext()
	}
	return out, nil
}

func (n *nodeConn) Store(_ context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	op, err := abi.DecodeStoreOp(r.GetOp())
	if err != nil {
		n.st.refused.Add(1)
		return &driverv1.StoreResponse{Code: abi.EINVAL, Error: err.Error()}, nil
	}
	out, err := n.store.Call(n.h, &op, nil)
	if err != nil {
		if code := procstore.Code(err); code != abi.ENONE {
			n.st.refused.Add(1)
		}
		return &driverv1.StoreResponse{Code: procstore.Code(err), Error: err.Error()}, nil
	}
	return &driverv1.StoreResponse{Result: out}, nil
}

func (n *nodeConn) Log(_ context.Context, r *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	level := slog.LevelInfo
	switch r.GetLevel() {
	case driverv1.LogLevel_LOG_LEVEL_DEBUG:
		level = slog.LevelDebug
	case driverv1.LogLevel_LOG_LEVEL_WARN:
		level = slog.LevelWarn
	case driverv1.LogLevel_LOG_LEVEL_ERROR:
		level = slog.LevelError
	}
	n.h.Log(level, r.GetMessage())
	return &driverv1.LogResponse{}, nil
}
