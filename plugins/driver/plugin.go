package driver

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/weftos/weft/api/driverv1"
)

// ProtocolVersion is the driver protocol's version in the go-plugin
// handshake: a driver built against another version is refused at
// launch, with both versions named. It changes only with an incompatible
// change to api/proto/weft/driver (which would then be weft.driver.v2).
const ProtocolVersion = 1

// Handshake is the go-plugin handshake between weftd and a driver. The
// cookie keeps a driver binary run by hand from starting a server.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "WEFT_DRIVER_COOKIE",
	MagicCookieValue: "weft-driver-9c1e5b7a4f2d",
}

// MaxMessageBytes bounds one gRPC message between weftd and a driver on
// the driver's side (gRPC's default, 4 MiB, is below what a message may
// carry). weftd bounds what it sends and takes by the kernel's limits.
const MaxMessageBytes = 256 << 20

// grpcLimits are the call options of the driver's connections.
var grpcLimits = grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))

// newGRPCServer is a gRPC server for either side, taking messages up to
// MaxMessageBytes.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))...)
}

// PluginName is the one plugin a driver binary serves.
const PluginName = "driver"

// Plugin is the go-plugin shim: on the driver's side it serves Impl; on
// weftd's it makes a Client.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the driver, on the driver's side; nil on weftd's.
	Impl Driver
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the driver's service.
func (p *Plugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	driverv1.RegisterDriverServer(s, newServer(p.Impl, b))
	return nil
}

// GRPCClient returns a Client, weftd's view of the driver.
func (p *Plugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{c: driverv1.NewDriverClient(c), broker: b}, nil
}

// PluginSet is what both sides of the handshake offer.
func PluginSet(impl Driver) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &Plugin{Impl: impl}}
}
