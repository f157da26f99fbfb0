package driver

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftos/weft/api/driverv1"
	"github.com/weftos/weft/api/weftv1"
)

// server is the driver's side of the gRPC contract: it serves a Driver
// to weftd, and dials weftd's Node through the broker on Start.
type server struct {
	driverv1.UnimplementedDriverServer
	impl   Driver
	broker *plugin.GRPCBroker

	// run is the context of the subprocess's one run: a driver
	// subprocess serves one run and ends with it.
	run context.Context

	mu      sync.Mutex
	started bool
	node    *grpc.ClientConn
}

func newServer(impl Driver, b *plugin.GRPCBroker) *server {
	return &server{impl: impl, broker: b, run: context.Background()}
}

func (s *server) Start(ctx context.Context, req *driverv1.StartRequest) (*driverv1.StartResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil, status.Error(codes.FailedPrecondition, "driver: started already; a driver subprocess serves one run")
	}
	if !json.Valid(req.GetConfig()) {
		return nil, status.Error(codes.InvalidArgument, "driver: config is not JSON")
	}
	conn, err := s.broker.DialWithOptions(req.GetNodeBrokerId(), grpcLimits)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "driver: dial the node: %v", err)
	}
	node := NewNode(nodeClient{driverv1.NewNodeClient(conn)})
	if err := s.impl.Start(s.run, Start{Address: req.GetAddress(), NodeID: req.GetNodeId(), Config: req.GetConfig(), Node: node}); err != nil {
		_ = conn.Close()
		return nil, status.Error(codes.Aborted, err.Error())
	}
	s.started, s.node = true, conn
	return &driverv1.StartResponse{}, nil
}

func (s *server) Handle(ctx context.Context, req *driverv1.HandleRequest) (*driverv1.HandleResponse, error) {
	m := req.GetMessage()
	if m.GetRequest() == nil {
		return nil, status.Error(codes.InvalidArgument, "driver: handle: the message is not a request")
	}
	resp := s.impl.Handle(ctx, NewRequest(m))
	if resp == nil {
		return &driverv1.HandleResponse{}, nil
	}
	r, b := resp.Proto()
	return &driverv1.HandleResponse{Response: r, Blob: b}, nil
}

func (s *server) Health(ctx context.Context, _ *driverv1.HealthRequest) (*driverv1.HealthResponse, error) {
	if h, ok := s.impl.(HealthChecker); ok {
		if err := h.Health(ctx); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
	}
	return &driverv1.HealthResponse{}, nil
}

// Proto converts r for the wire.
func (r *Response) Proto() (*weftv1.Response, *weftv1.Blob) {
	p := &weftv1.Response{Inherit: r.Inherit, Body: r.Body, Capabilities: r.Capabilities}
	if r.Metadata != "" {
		p.Metadata = &r.Metadata
	}
	return p, r.Blob
}

// responseFromProto is the inverse of proto.
func responseFromProto(p *weftv1.Response, b *weftv1.Blob) *Response {
	if p == nil {
		return nil
	}
	return &Response{Body: p.GetBody(), Metadata: p.GetMetadata(), Capabilities: p.GetCapabilities(), Blob: b, Inherit: p.GetInherit()}
}

// nodeClient is weftd's Node as the driver reaches it over gRPC.
type nodeClient struct{ c driverv1.NodeClient }

func (n nodeClient) Send(ctx context.Context, r *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	return n.c.Send(ctx, r)
}

func (n nodeClient) Store(ctx context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	return n.c.Store(ctx, r)
}

func (n nodeClient) Log(ctx context.Context, r *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	return n.c.Log(ctx, r)
}

// nodeServer serves weftd's NodeConn to a driver over gRPC.
type nodeServer struct {
	driverv1.UnimplementedNodeServer
	conn NodeConn
}

func (n nodeServer) Send(ctx context.Context, r *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	return n.conn.Send(ctx, r)
}

func (n nodeServer) Store(ctx context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	return n.conn.Store(ctx, r)
}

func (n nodeServer) Log(ctx context.Context, r *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	return n.conn.Log(ctx, r)
}

// errNoNode is Start's error for a Start without a Node.
var errNoNode = errors.New("driver: start: no Node")
