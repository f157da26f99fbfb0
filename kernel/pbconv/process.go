package pbconv

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
)

// ProcessInfo returns the protobuf form of a process as the kernel
// reports it. Negative counts (the kernel gives none) become zero; a zero
// start time is absent.
func ProcessInfo(p kernel.ProcessInfo) *weftv1.ProcessInfo {
	info := &weftv1.ProcessInfo{
		Id:           p.ID.String(),
		State:        ProcessState(p.State),
		Public:       p.Public,
		Persisted:    p.Persisted,
		OnExit:       OnExitKind(p.OnExit.Kind),
		Restarts:     uint32(max(p.Restarts, 0)),
		MailboxDepth: uint32(max(p.MailboxDepth, 0)),
		Pending:      uint32(max(p.Pending, 0)),
		LastError:    p.LastError,
	}
	if p.Parent != nil {
		info.Parent = p.Parent.String()
	}
	if !p.Started.IsZero() {
		info.Started = timestamppb.New(p.Started)
	}
	return info
}

// ProcessState returns the protobuf form of a process's state:
// PROCESS_STATE_UNSPECIFIED for a value that is not one of the kernel's
// states.
func ProcessState(s kernel.ProcState) weftv1.ProcessState {
	switch s {
	case kernel.StateRunning:
		return weftv1.ProcessState_PROCESS_STATE_RUNNING
	case kernel.StateRestarting:
		return weftv1.ProcessState_PROCESS_STATE_RESTARTING
	case kernel.StateExited:
		return weftv1.ProcessState_PROCESS_STATE_EXITED
	case kernel.StateKilled:
		return weftv1.ProcessState_PROCESS_STATE_KILLED
	}
	return weftv1.ProcessState_PROCESS_STATE_UNSPECIFIED
}

// FromProcessState converts a process's state from protobuf. Unspecified
// and unknown values are refused with a *FieldError for field "state".
func FromProcessState(s weftv1.ProcessState) (kernel.ProcState, error) {
	switch s {
	case weftv1.ProcessState_PROCESS_STATE_RUNNING:
		return kernel.StateRunning, nil
	case weftv1.ProcessState_PROCESS_STATE_RESTARTING:
		return kernel.StateRestarting, nil
	case weftv1.ProcessState_PROCESS_STATE_EXITED:
		return kernel.StateExited, nil
	case weftv1.ProcessState_PROCESS_STATE_KILLED:
		return kernel.StateKilled, nil
	case weftv1.ProcessState_PROCESS_STATE_UNSPECIFIED:
		return 0, fieldErrf("state", "process state is unspecified")
	}
	return 0, fieldErrf("state", "unknown process state %d", int32(s))
}

// The protobuf names of the on_exit policy kinds (ProcessInfo.on_exit is
// a string).
const (
	onExitNone     = "none"
	onExitRestart  = "restart"
	onExitRequests = "requests"
)

// OnExitKind returns the protobuf form of an on_exit policy's kind:
// "none", "restart" or "requests"; "" for a value that is not one of the
// kernel's kinds (the kernel refuses such a policy).
func OnExitKind(k kernel.OnExitKind) string {
	switch k {
	case kernel.OnExitNone:
		return onExitNone
	case kernel.OnExitRestart:
		return onExitRestart
	case kernel.OnExitRequests:
		return onExitRequests
	}
	return ""
}

// FromOnExitKind converts an on_exit policy's kind from protobuf. Any
// other string than "none", "restart" and "requests", the empty one
// included, is refused with a *FieldError for field "on_exit".
func FromOnExitKind(s string) (kernel.OnExitKind, error) {
	switch s {
	case onExitNone:
		return kernel.OnExitNone, nil
	case onExitRestart:
		return kernel.OnExitRestart, nil
	case onExitRequests:
		return kernel.OnExitRequests, nil
	case "":
		return 0, fieldErrf("on_exit", "on_exit kind is unspecified")
	}
	return 0, fieldErrf("on_exit", "unknown on_exit kind %q (want %q, %q or %q)", echoed.Truncate(s), onExitNone, onExitRestart, onExitRequests)
}
