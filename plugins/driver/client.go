package driver

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/weftos/weft/api/driverv1"
)

// Client is weftd's side of the gRPC contract: a driver subprocess as a
// Conn. On Start it serves the run's Node to the driver through
// go-plugin's broker.
type Client struct {
	c      driverv1.DriverClient
	broker *plugin.GRPCBroker
}

var _ Conn = (*Client)(nil)

// Start serves s.Node on a new broker stream and tells the driver who it
// is and where its Node is.
func (c *Client) Start(ctx context.Context, s Start) error {
	if s.Node == nil {
		return errNoNode
	}
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		srv := newGRPCServer(opts)
		driverv1.RegisterNodeServer(srv, nodeServer{conn: s.Node.conn})
		return srv
	})
	_, err := c.c.Start(ctx, &driverv1.StartRequest{Address: s.Address, NodeId: s.NodeID, Config: s.Config, NodeBrokerId: id})
	return err
}

// Handle delivers r and returns the driver's answer.
func (c *Client) Handle(ctx context.Context, r *Request) (*Response, error) {
	resp, err := c.c.Handle(ctx, &driverv1.HandleRequest{Message: r.Proto()})
	if err != nil {
		return nil, err
	}
	return responseFromProto(resp.GetResponse(), resp.GetBlob()), nil
}

// Health asks the driver whether it can serve.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.c.Health(ctx, &driverv1.HealthRequest{})
	return err
}
