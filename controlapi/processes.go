package controlapi

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

func (s *server) ListProcesses(_ context.Context, req *connect.Request[weftv1.ListProcessesRequest]) (*connect.Response[weftv1.ListProcessesResponse], error) {
	var only *kernel.PackageId
	if p := req.Msg.GetPackage(); p != "" {
		id, err := kernel.ParsePackageId(p)
		if err != nil {
			return nil, field("package", err)
		}
		only = &id
	}
	var out []*weftv1.ProcessInfo
	for _, p := range s.k.Processes() {
		if only != nil && p.ID.PackageId() != *only {
			continue
		}
		out = append(out, pbconv.ProcessInfo(p))
	}
	return connect.NewResponse(&weftv1.ListProcessesResponse{Processes: out}), nil
}

func (s *server) KillProcess(ctx context.Context, req *connect.Request[weftv1.KillProcessRequest]) (*connect.Response[weftv1.KillProcessResponse], error) {
	id, err := parseProcess("process", req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := s.k.Kill(ctx, id); err != nil {
		return nil, err
	}
	info, err := s.processAfter(id, kernel.StateKilled)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.KillProcessResponse{Process: info}), nil
}

func (s *server) RestartProcess(ctx context.Context, req *connect.Request[weftv1.RestartProcessRequest]) (*connect.Response[weftv1.RestartProcessResponse], error) {
	id, err := parseProcess("process", req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := s.k.Restart(ctx, id); err != nil {
		return nil, err
	}
	info, err := s.processAfter(id, kernel.StateRunning)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RestartProcessResponse{Process: info}), nil
}

// processAfter reports a process after a kill or a restart; one that left
// the table meanwhile (a spawned child is forgotten once killed) is
// reported by its id and the state the call left it in.
func (s *server) processAfter(id kernel.ProcessId, state kernel.ProcState) (*weftv1.ProcessInfo, error) {
	p, err := s.k.Process(id)
	if errors.Is(err, kernel.ErrNotFound) {
		return &weftv1.ProcessInfo{Id: id.String(), State: pbconv.ProcessState(state)}, nil
	}
	if err != nil {
		return nil, err
	}
	return pbconv.ProcessInfo(p), nil
}

// parseProcess parses a process id from the request field name.
func parseProcess(name, s string) (kernel.ProcessId, error) {
	id, err := kernel.ParseProcessId(s)
	if err != nil {
		return kernel.ProcessId{}, field(name, err)
	}
	return id, nil
}
