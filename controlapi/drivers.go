package controlapi

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/plugins"
)

// Drivers is what the DriverService needs of the node's native drivers;
// *plugins.Manager is one.
type Drivers interface {
	// List describes every declared driver, in declaration order, those
	// refused included (Info.Refused says why).
	List() []plugins.Info
	// Restart stops driver name if it runs and starts it again; a refused
	// driver's binary is checked again. It fails with an error wrapping
	// plugins.ErrUnknown when no declaration has name. When the driver is
	// refused again, it fails with the reason, written for people, that
	// List then reports as Info.Refused (wrapping plugins.ErrChecksum and
	// naming both sums when the binary's SHA-256 is not the declared
	// one). Other errors are the kernel's.
	Restart(ctx context.Context, name string) error
}

// errNoDrivers answers driver calls on a node served without Drivers.
// Not CodeUnavailable: asking again will not help, and weft would ask
// whether weftd runs.
var errNoDrivers = connect.NewError(connect.CodeFailedPrecondition, errors.New("this node serves no driver manager"))

func (s *server) ListDrivers(context.Context, *connect.Request[weftv1.ListDriversRequest]) (*connect.Response[weftv1.ListDriversResponse], error) {
	if s.drivers == nil {
		return nil, errNoDrivers
	}
	list := s.drivers.List()
	out := make([]*weftv1.DriverInfo, 0, len(list))
	for _, in := range list {
		out = append(out, driverInfo(in))
	}
	return connect.NewResponse(&weftv1.ListDriversResponse{Drivers: out}), nil
}

func (s *server) RestartDriver(ctx context.Context, req *connect.Request[weftv1.RestartDriverRequest]) (*connect.Response[weftv1.RestartDriverResponse], error) {
	if s.drivers == nil {
		return nil, errNoDrivers
	}
	name := req.Msg.GetName()
	if err := plugins.ID(name).Validate(); err != nil {
		return nil, field("name", err)
	}
	if err := s.drivers.Restart(ctx, name); err != nil {
		// Restart returns a refusal as the reason alone; the driver's
		// listing tells it from a failure of the kernel's.
		if in, ok := s.driver(name); ok && in.Refused != "" {
			return nil, &refusedError{err}
		}
		return nil, err
	}
	in, ok := s.driver(name)
	if !ok {
		// Restart found it, and declarations never go away.
		return nil, errors.New("driver " + name + ": restarted, then not listed")
	}
	return connect.NewResponse(&weftv1.RestartDriverResponse{Driver: driverInfo(in)}), nil
}

// driver returns the listing of driver name.
func (s *server) driver(name string) (plugins.Info, bool) {
	for _, in := range s.drivers.List() {
		if in.Name == name {
			return in, true
		}
	}
	return plugins.Info{}, false
}

// driverInfo converts a driver's listing.
func driverInfo(in plugins.Info) *weftv1.DriverInfo {
	out := &weftv1.DriverInfo{
		Name:              in.Name,
		Process:           in.ID.String(),
		State:             pbconv.ProcessState(in.Process.State),
		Pid:               uint32(in.Pid),
		Restarts:          uint32(in.Process.Restarts),
		LastError:         in.Process.LastError,
		Refused:           in.Refused,
		Path:              in.Path,
		Sha256:            in.SHA256,
		InProcess:         in.Path == "",
		Public:            in.Public,
		Calls:             in.Calls,
		Failures:          in.Failures,
		RefusedOperations: in.RefusedOps,
	}
	if !in.Process.Started.IsZero() {
		out.Started = timestamppb.New(in.Process.Started)
	}
	return out
}
