package weft

import (
	"strconv"

	"github.com/weftos/weft/abi"
)

// Error is a failure a host function reported: its ABI code (negative),
// the operation that failed and the node's sentence about it (last_error).
// Compare with errors.Is against the sentinels below: an *Error matches
// the sentinel of its code.
type Error struct {
	Code   int32  // abi.EINVAL, abi.ESTOPPED, …
	Op     string // the operation, e.g. "state_get"; empty on a sentinel
	Detail string // the node's sentence; may be empty
}

func (e *Error) Error() string {
	s := "weft: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += codeText(e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, ErrNoState) holds for any WEFT_ENONE.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per ABI error code (compare with errors.Is). ErrNoState
// and ErrNoBlob share WEFT_ENONE, so either matches both.
var (
	ErrInvalid       = &Error{Code: abi.EINVAL}
	ErrStopped       = &Error{Code: abi.ESTOPPED}
	ErrNoRequest     = &Error{Code: abi.ENOREQUEST}
	ErrNoState       = &Error{Code: abi.ENONE, Detail: "no state"}
	ErrNoBlob        = &Error{Code: abi.ENONE, Detail: "no blob"}
	ErrLimit         = &Error{Code: abi.ELIMIT}
	ErrPerm          = &Error{Code: abi.EPERM}
	ErrNotFound      = &Error{Code: abi.ENOTFOUND}
	ErrExists        = &Error{Code: abi.EEXIST}
	ErrInternal      = &Error{Code: abi.EINTERNAL}
	ErrTimeout       = &Error{Code: abi.ETIMEOUT}
	ErrOffline       = &Error{Code: abi.EOFFLINE}
	ErrNoSuchProcess = &Error{Code: abi.ENOSUCHPROCESS}
	ErrNoCapability  = &Error{Code: abi.ENOCAPABILITY}
	ErrMailboxFull   = &Error{Code: abi.EMAILBOXFULL}
	ErrKilled        = &Error{Code: abi.EKILLED}
	ErrTooLarge      = &Error{Code: abi.ETOOLARGE}
)

var codeTexts = map[int32]string{
	abi.EINVAL:         "invalid argument",
	abi.ESTOPPED:       "process stopped",
	abi.ENOREQUEST:     "no request to respond to",
	abi.ENONE:          "none",
	abi.ELIMIT:         "limit reached",
	abi.EPERM:          "not permitted",
	abi.ENOTFOUND:      "not found",
	abi.EEXIST:         "already exists",
	abi.EINTERNAL:      "node failure",
	abi.ETIMEOUT:       "timeout",
	abi.EOFFLINE:       "offline",
	abi.ENOSUCHPROCESS: "no such process",
	abi.ENOCAPABILITY:  "no capability",
	abi.EMAILBOXFULL:   "mailbox full",
	abi.EKILLED:        "killed",
	abi.ETOOLARGE:      "too large",
}

// codeText names a code for people, with its ABI name.
func codeText(code int32) string {
	if t, ok := codeTexts[code]; ok {
		return t + " (" + abi.ErrorName(code) + ")"
	}
	return abi.ErrorName(code)
}

// SendErrorKind says why a request failed (docs/abi.md, error kind).
type SendErrorKind uint8

// Send error kinds; each is also the ABI code -100 - kind.
const (
	Timeout       SendErrorKind = 1
	Offline       SendErrorKind = 2
	NoSuchProcess SendErrorKind = 3
	NoCapability  SendErrorKind = 4
	MailboxFull   SendErrorKind = 5
	Killed        SendErrorKind = 6
	TooLarge      SendErrorKind = 7
)

var kindNames = [...]string{"", "timeout", "offline", "no_such_process", "no_capability", "mailbox_full", "killed", "too_large"}

func (k SendErrorKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "send_error(" + strconv.Itoa(int(k)) + ")"
}

// Code is the ABI code of k (-101 for Timeout, …).
func (k SendErrorKind) Code() int32 { return abi.SendErrorCode(uint8(k)) }

// SendError is a request that failed: at once (Send, SendAndAwait return
// it) or later (an error message, Message.SendError). errors.Is matches
// it against the sentinel of its kind (ErrTimeout, ErrNoCapability, …).
type SendError struct {
	Kind    SendErrorKind
	Target  string // the address that failed
	Detail  string // the node's sentence
	ID      uint64 // the failed request's id; 0 when it failed at once
	Context []byte // the context kept with the request
}

func (e *SendError) Error() string {
	s := "weft: send"
	if e.Target != "" {
		s += " to " + e.Target
	}
	s += ": " + e.Kind.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is the *Error sentinel of e's kind.
func (e *SendError) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Kind.Code()
}

// isSendCode reports whether code is one of the send error codes.
func isSendCode(code int32) bool {
	return code <= abi.ETIMEOUT && code >= abi.SendErrorCode(abi.MaxErrorKind)
}
