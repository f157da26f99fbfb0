package controlapi

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/store"
)

// internalMessage is all a client learns of an error this file does not
// know: the real one goes to the node's log.
const internalMessage = "internal error; see the node's log"

// MaxErrorMessageBytes bounds the message of an error a client gets, and
// the text of an internal error the node logs: longer ones are cut by
// echoed.TruncateTo. Each value from the request that an error repeats is
// already cut at echoed.MaxBytes where it is written; this bound
// catches an error that repeats one whole, wherever it was made.
const MaxErrorMessageBytes = 4 << 10

// codes maps the domain's sentinel errors to Connect codes, first match
// wins. The text of an error that matches one is written for people (the
// kernel's and the registry's errors name the process or package and say
// why) and goes to the client as it is.
var codes = []struct {
	err  error
	code connect.Code
}{
	{kernel.ErrInvalid, connect.CodeInvalidArgument},
	{install.ErrNotRequested, connect.CodeInvalidArgument},
	{kernel.ErrNotFound, connect.CodeNotFound},
	{install.ErrNotInstalled, connect.CodeNotFound},
	{kernel.ErrExists, connect.CodeAlreadyExists},
	{install.ErrOtherVersion, connect.CodeFailedPrecondition},
	{install.ErrGrantTarget, connect.CodeFailedPrecondition},
	{kernel.ErrNotHeld, connect.CodeFailedPrecondition},
	{kernel.ErrNotPermitted, connect.CodePermissionDenied},
	{kernel.ErrForged, connect.CodePermissionDenied},
	{kernel.ErrRevoked, connect.CodePermissionDenied},
	{kernel.ErrLimit, connect.CodeResourceExhausted},
	{kernel.ErrClosed, connect.CodeUnavailable},
	{kernel.ErrStopped, connect.CodeUnavailable},
	// The store's errors name the package, the database or drive, the
	// key or path, and the limit broken.
	{store.ErrBadName, connect.CodeInvalidArgument},
	{store.ErrBadKey, connect.CodeInvalidArgument},
	{store.ErrBadPath, connect.CodeInvalidArgument},
	{store.ErrValueTooLarge, connect.CodeInvalidArgument},
	{store.ErrTxTooLarge, connect.CodeInvalidArgument},
	{store.ErrNoDB, connect.CodeNotFound},
	{store.ErrDBExists, connect.CodeAlreadyExists},
	{store.ErrQuota, connect.CodeResourceExhausted},
	{store.ErrClosed, connect.CodeUnavailable},
	// The drivers' errors name the driver; a checksum mismatch names the
	// binary and both sums.
	{plugins.ErrUnknown, connect.CodeNotFound},
	{plugins.ErrChecksum, connect.CodeFailedPrecondition},
	// The backups' errors name the target, never its credentials. A
	// second operation while one runs is a conflict worth retrying later
	// (ABORTED), not a node that is down (UNAVAILABLE, which weft answers
	// with "is weftd running?"), nor a state the operator must fix
	// (FAILED_PRECONDITION).
	{backup.ErrBusy, connect.CodeAborted},
	{backup.ErrNoTarget, connect.CodeNotFound},
	{backup.ErrOwnKey, connect.CodeFailedPrecondition},
	{repo.ErrLastKey, connect.CodeFailedPrecondition},
	// A call on one target (RemoveBackupKey) fails with that target's
	// error, which the calls on several put in each target's result: no
	// repository yet (the message says to run weft backup init), one the
	// node's key does not open, an object that fails its checks.
	{backup.ErrNotInitialized, connect.CodeFailedPrecondition},
	{repo.ErrWrongKey, connect.CodeFailedPrecondition},
	{repo.ErrCorrupt, connect.CodeDataLoss},
	{object.ErrNotFound, connect.CodeNotFound},
	// A target that stayed down through its retries may be back later
	// (weft tells a node's answer from a node that is not there); one
	// that refuses the credentials waits for the operator to fix them.
	{object.ErrUnavailable, connect.CodeUnavailable},
	{object.ErrDenied, connect.CodeFailedPrecondition},
	// The PeerService's (peers.go): a node that could not be reached is
	// UNAVAILABLE and its message names the node (weft tells a node's
	// answer from a weftd that is not there); one not connected, with no
	// address known, or an alias not set, NOT_FOUND; a node whose
	// network is off waits for the operator.
	{errNetworkOff, connect.CodeFailedPrecondition},
	{errUnknownPeer, connect.CodeNotFound},
	{errUnreachable, connect.CodeUnavailable},
}

// driveError marks an error of the store's drives. Their fs.ErrNotExist
// means a missing drive, directory or file, named relative to its drive;
// elsewhere fs.ErrNotExist may carry a path of the host, so toConnect maps
// it to CodeNotFound only under this mark.
type driveError struct{ err error }

func (e *driveError) Error() string { return e.err.Error() }

func (e *driveError) Unwrap() error { return e.err }

// refusedError marks the reason a driver was refused to start (its
// binary's checksum, a missing binary, a declaration that cannot be
// used): written for the operator, whose configuration it names, and
// CodeFailedPrecondition whatever it wraps.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

func (e *refusedError) Unwrap() error { return e.err }

// toConnect maps an error of a handler to the *connect.Error the client
// gets, its message at most MaxErrorMessageBytes. Errors that are already
// *connect.Error pass unchanged but for that bound. An error it does not
// recognise becomes CodeInternal with a generic message, and is logged
// with the procedure that returned it.
func toConnect(log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	return bounded(mapError(log, procedure, err))
}

// bounded cuts the message of ce to MaxErrorMessageBytes, keeping its
// code, details and metadata.
func bounded(ce *connect.Error) *connect.Error {
	if len(ce.Message()) <= MaxErrorMessageBytes {
		return ce
	}
	out := connect.NewError(ce.Code(), errors.New(echoed.TruncateTo(ce.Message(), MaxErrorMessageBytes)))
	for _, d := range ce.Details() {
		out.AddDetail(d)
	}
	for k, vs := range ce.Meta() {
		out.Meta()[k] = vs
	}
	return out
}

// mapError is toConnect without the bound on the message; err is not nil.
func mapError(log *slog.Logger, procedure string, err error) *connect.Error {
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce
	}
	// Bad input: the message names the field or the file at fault.
	var fe *pbconv.FieldError
	if errors.As(err, &fe) {
		return connect.NewError(connect.CodeInvalidArgument, errors.New(fe.Field+": "+fe.Err.Error()))
	}
	var pe *packages.Error
	if errors.As(err, &pe) {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("bad package: "+pe.Error()))
	}
	var ne *kernel.NameError
	if errors.As(err, &ne) {
		return connect.NewError(connect.CodeInvalidArgument, ne)
	}
	if re := new(refusedError); errors.As(err, &re) {
		return connect.NewError(connect.CodeFailedPrecondition, err)
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return connect.NewError(c.code, err)
		}
	}
	if de := new(driveError); errors.As(err, &de) && errors.Is(err, fs.ErrNotExist) {
		return connect.NewError(connect.CodeNotFound, err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed"))
	}
	log.Error("control API: internal error", "procedure", procedure, "err", echoed.TruncateTo(err.Error(), MaxErrorMessageBytes))
	return connect.NewError(connect.CodeInternal, errors.New(internalMessage))
}

// field says that a value of the request is wrong: the field's path in
// the request, and why.
func field(name string, err error) error {
	return &pbconv.FieldError{Field: name, Err: err}
}

// inField puts a *pbconv.FieldError from a conversion of a nested message
// under the path of the field that holds it; other errors pass unchanged.
func inField(prefix string, err error) error {
	var fe *pbconv.FieldError
	if errors.As(err, &fe) {
		return &pbconv.FieldError{Field: prefix + "." + fe.Field, Err: fe.Err}
	}
	return err
}

// errorsInterceptor maps every error a handler returns through toConnect.
// It is the innermost interceptor, so the audit log and the daemon's
// interceptors see the code the client gets.
type errorsInterceptor struct{ log *slog.Logger }

func (e errorsInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			return nil, toConnect(e.log, req.Spec().Procedure, err)
		}
		return res, nil
	}
}

func (e errorsInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e errorsInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return toConnect(e.log, conn.Spec().Procedure, next(ctx, conn))
	}
}
