package pbconv

import (
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// Message returns the protobuf form of a message the kernel delivered;
// nil for nil. Its capabilities are the kernel's unsigned records and go
// out with an empty signature. On an error message, the failed request
// inside the SendError is converted without an error of its own, so the
// result never nests deeper than that. A message of an unknown kind has no
// kind set. Metadata is passed on as it is: the kernel refuses metadata
// that is not UTF-8 on every request and response, and should any reach
// here its invalid bytes become U+FFFD, so the result always marshals.
func Message(m *kernel.Message) *weftv1.Message {
	return message(m, true)
}

func message(m *kernel.Message, nested bool) *weftv1.Message {
	if m == nil {
		return nil
	}
	out := &weftv1.Message{
		Id:      m.ID,
		Source:  m.Source().String(),
		Target:  m.Target().String(),
		Blob:    Blob(m.Blob),
		Context: m.Context(),
	}
	switch m.Kind {
	case kernel.KindRequest:
		out.Kind = &weftv1.Message_Request{Request: &weftv1.Request{
			Inherit:         m.Inherit,
			ExpectsResponse: durationPB(m.ExpectsResponse),
			Body:            m.Body,
			Metadata:        metadata(m.Metadata),
			Capabilities:    unsignedCapabilities(m.Capabilities),
		}}
	case kernel.KindResponse:
		out.Kind = &weftv1.Message_Response{Response: &weftv1.Response{
			Inherit:      m.Inherit,
			Body:         m.Body,
			Metadata:     metadata(m.Metadata),
			Capabilities: unsignedCapabilities(m.Capabilities),
		}}
	case kernel.KindError:
		// Inside a SendError, or when the kernel gave none (it always
		// does), the error is left empty.
		e := &weftv1.SendError{Context: m.Context()}
		if nested && m.Error != nil {
			e = sendError(m.Error)
		}
		out.Kind = &weftv1.Message_Error{Error: e}
	}
	return out
}

// SendError returns the protobuf form of a send error; nil for nil. The
// failed request it carries is converted as by Message, without an error
// of its own.
func SendError(e *kernel.SendError) *weftv1.SendError {
	if e == nil {
		return nil
	}
	return sendError(e)
}

func sendError(e *kernel.SendError) *weftv1.SendError {
	return &weftv1.SendError{
		Kind:    ErrorKind(e.Kind),
		Target:  e.Target.String(),
		Message: message(e.Message, false),
		Context: e.Context,
		Detail:  e.Detail,
	}
}

// ErrorKind returns the protobuf form of a send error's kind:
// SEND_ERROR_KIND_UNSPECIFIED for a value that is not one of
// kernel.ErrorKinds.
func ErrorKind(k kernel.ErrorKind) weftv1.SendErrorKind {
	switch k {
	case kernel.ErrTimeout:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT
	case kernel.ErrOffline:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_OFFLINE
	case kernel.ErrNoSuchProcess:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS
	case kernel.ErrNoCapability:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_NO_CAPABILITY
	case kernel.ErrMailboxFull:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL
	case kernel.ErrKilled:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED
	case kernel.ErrTooLarge:
		return weftv1.SendErrorKind_SEND_ERROR_KIND_TOO_LARGE
	}
	return weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED
}

// FromErrorKind converts a send error's kind from protobuf. Unspecified and
// unknown values are refused with a *FieldError for field "kind".
func FromErrorKind(k weftv1.SendErrorKind) (kernel.ErrorKind, error) {
	switch k {
	case weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT:
		return kernel.ErrTimeout, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_OFFLINE:
		return kernel.ErrOffline, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS:
		return kernel.ErrNoSuchProcess, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_NO_CAPABILITY:
		return kernel.ErrNoCapability, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL:
		return kernel.ErrMailboxFull, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED:
		return kernel.ErrKilled, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_TOO_LARGE:
		return kernel.ErrTooLarge, nil
	case weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED:
		return 0, fieldErrf("kind", "send error kind is unspecified")
	}
	return 0, fieldErrf("kind", "unknown send error kind %d", int32(k))
}
