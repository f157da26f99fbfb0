package controlapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/plugins"
)

func TestErrorCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("kernel: kill x:y:z: %w", err) }
	for _, tc := range []struct {
		err  error
		code connect.Code
		msg  string // the client's message holds it
	}{
		{&pbconv.FieldError{Field: "target", Err: errors.New("bad")}, connect.CodeInvalidArgument, "target: bad"},
		{&packages.Error{File: "manifest.json", Err: errors.New("process 1: no name")}, connect.CodeInvalidArgument, "manifest.json: process 1: no name"},
		{&kernel.NameError{Input: "X", Part: "process name", Reason: "upper case"}, connect.CodeInvalidArgument, "process name"},
		{wrap(kernel.ErrInvalid), connect.CodeInvalidArgument, "x:y:z"},
		{fmt.Errorf("install: %w", install.ErrNotRequested), connect.CodeInvalidArgument, "not requested"},
		{wrap(kernel.ErrNotFound), connect.CodeNotFound, "x:y:z"},
		{install.ErrNotInstalled, connect.CodeNotFound, "not installed"},
		{wrap(kernel.ErrExists), connect.CodeAlreadyExists, "x:y:z"},
		{fmt.Errorf("install a:b: %w", install.ErrOtherVersion), connect.CodeFailedPrecondition, "another version"},
		{install.ErrGrantTarget, connect.CodeFailedPrecondition, "grant target"},
		{wrap(kernel.ErrNotHeld), connect.CodeFailedPrecondition, "not held"},
		{wrap(kernel.ErrNotPermitted), connect.CodePermissionDenied, "not permitted"},
		{wrap(kernel.ErrForged), connect.CodePermissionDenied, "does not verify"},
		{wrap(kernel.ErrRevoked), connect.CodePermissionDenied, "revoked"},
		{wrap(kernel.ErrLimit), connect.CodeResourceExhausted, "limit"},
		{kernel.ErrClosed, connect.CodeUnavailable, "closed"},
		{fmt.Errorf("driver %q: %w", "x", plugins.ErrUnknown), connect.CodeNotFound, `driver "x": no such driver`},
		{fmt.Errorf("driver x: %w: /bin/x has SHA-256 ab, its declaration says cd; refused", plugins.ErrChecksum), connect.CodeFailedPrecondition, "ab, its declaration says cd"},
		{fmt.Errorf("%w (run)", backup.ErrBusy), connect.CodeAborted, "another backup operation is running (run)"},
		{fmt.Errorf("%w: \"x\" (declared: [a b])", backup.ErrNoTarget), connect.CodeNotFound, "declared: [a b]"},
		{fmt.Errorf("backup: key ab: %w", backup.ErrOwnKey), connect.CodeFailedPrecondition, "stop its backups"},
		{fmt.Errorf("remove key ab: %w", repo.ErrLastKey), connect.CodeFailedPrecondition, "last key file"},
		{backup.ErrNotInitialized, connect.CodeFailedPrecondition, "run weft backup init"},
		{fmt.Errorf("%w (2 key files tried)%w", repo.ErrWrongKey, errors.Join(fmt.Errorf("keys/ab: %w", repo.ErrCorrupt))), connect.CodeFailedPrecondition, "no key file opens"},
		{fmt.Errorf("s3 a: keys/ab: %w: too short", repo.ErrCorrupt), connect.CodeDataLoss, "keys/ab: corrupt"},
		{fmt.Errorf("remove key ab: %w", object.ErrNotFound), connect.CodeNotFound, "remove key ab"},
		{context.Canceled, connect.CodeCanceled, "canceled"},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "deadline"},
		{connect.NewError(connect.CodeAborted, errors.New("as is")), connect.CodeAborted, "as is"},
		{errors.Join(errors.New("install a:b: compile"), wrap(kernel.ErrExists)), connect.CodeAlreadyExists, "x:y:z"},
	} {
		var log bytes.Buffer
		err := controlapi.ToConnect(slog.New(slog.NewTextHandler(&log, nil)), "/p", tc.err)
		if got := connect.CodeOf(err); got != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, got, tc.code)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: message %q lacks %q", tc.err, err, tc.msg)
		}
		if log.Len() != 0 {
			t.Errorf("%v: logged %q", tc.err, log.String())
		}
	}
	if err := controlapi.ToConnect(slog.Default(), "/p", nil); err != nil {
		t.Errorf("nil: %v", err)
	}
}

func TestInternalErrorHidden(t *testing.T) {
	var log bytes.Buffer
	secret := errors.New("open /var/lib/weft/secret: permission denied")
	err := controlapi.ToConnect(slog.New(slog.NewTextHandler(&log, nil)), "/weft.v1.X/Y", fmt.Errorf("store: %w", secret))
	wantCode(t, err, connect.CodeInternal, "internal error; see the node's log")
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("client sees %q", err)
	}
	if !strings.Contains(log.String(), "/var/lib/weft/secret") || !strings.Contains(log.String(), "/weft.v1.X/Y") {
		t.Errorf("log %q lacks the error and the procedure", log.String())
	}
}
