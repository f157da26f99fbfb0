package controlapi

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// systemPackage is the package of the node's own processes.
var systemPackage = kernel.KernelProcess.PackageId()

func (s *server) GetInfo(_ context.Context, _ *connect.Request[weftv1.GetInfoRequest]) (*connect.Response[weftv1.GetInfoResponse], error) {
	var procs, running uint32
	for _, p := range s.k.Processes() {
		if p.ID.PackageId() == systemPackage {
			continue
		}
		procs++
		if p.State == kernel.StateRunning {
			running++
		}
	}
	var pkgs uint32
	if s.reg != nil {
		pkgs = uint32(len(s.reg.List()))
	}
	st := s.k.Stats()
	sendErrors := make(map[string]uint64, len(st.SendErrors))
	for kind, n := range st.SendErrors {
		sendErrors[kind.String()] = n
	}
	var backups []*weftv1.BackupTargetStatus
	if s.backups != nil {
		backups = targetStatuses(s.backups.Status())
	}
	var listen []string
	if s.net != nil {
		listen = s.net.ListenAddrs()
	}
	return connect.NewResponse(&weftv1.GetInfoResponse{
		Network:          s.net != nil,
		ListenAddrs:      listen,
		Backups:          backups,
		NodeId:           s.k.NodeID(),
		Version:          s.version,
		Started:          timestamppb.New(s.started),
		Uptime:           durationpb.New(time.Since(s.started)),
		Processes:        procs,
		ProcessesRunning: running,
		Packages:         pkgs,
		MessagesRouted:   st.Routed,
		SendErrors:       sendErrors,
		Restarts:         st.Restarts,
	}), nil
}
