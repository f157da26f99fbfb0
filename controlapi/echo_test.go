package controlapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/packages/install"
)

// echoBound is the most an error message or an audit line may grow by
// repeating one huge value: the value's MaxEchoBytes, the cut marker, and
// the sentence around it.
const echoBound = echoed.MaxBytes + 512

// TestHugeValuesNotEchoed sends values of 1 MiB where names belong: the
// error the client gets and the audit line each repeat at most
// echoed.MaxBytes of the value, and say how much was cut.
func TestHugeValuesNotEchoed(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	huge := strings.Repeat("A", 1<<20)
	for _, tc := range []struct {
		name      string
		procedure string
		attr      string // the audit line's attribute that holds the value
		call      func() error
	}{
		{"send target", "/weft.v1.MessageService/Send", "target", func() error {
			_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: huge, Request: &weftv1.Request{}}))
			return err
		}},
		{"send target node", "/weft.v1.MessageService/Send", "target", func() error {
			_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: huge + "@a:b:c", Request: &weftv1.Request{}}))
			return err
		}},
		{"kill", "/weft.v1.ProcessService/KillProcess", "process", func() error {
			_, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: huge}))
			return err
		}},
		{"grant issuer", "/weft.v1.CapabilityService/GrantCapability", "issuer", func() error {
			_, err := n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{Process: sinkID.String(),
				Capability: &weftv1.Capability{Issuer: "our@" + huge + ":b:c", Params: `"messaging"`}}))
			return err
		}},
		{"uninstall", "/weft.v1.PackageService/UninstallPackage", "package", func() error {
			_, err := n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: huge}))
			return err
		}},
		{"kv set", "/weft.v1.StoreService/KVSet", "package", func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: huge, Database: "db", Key: []byte("k")}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(n.logs.lines())
			err := tc.call()
			wantCode(t, err, connect.CodeInvalidArgument, "bytes cut)")
			if msg := errMessage(err); len(msg) > echoBound {
				t.Errorf("the error is %d bytes: %.300s…", len(msg), msg)
			}
			lines := n.logs.lines()[before:]
			var audit string
			for _, l := range lines {
				if strings.Contains(l, `"msg":"audit"`) && strings.Contains(l, tc.procedure) {
					audit = l
				}
				if len(l) > echoBound {
					t.Errorf("a log line is %d bytes: %.300s…", len(l), l)
				}
			}
			if audit == "" {
				t.Fatalf("no audit line for %s among %d lines", tc.procedure, len(lines))
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(audit), &rec); err != nil {
				t.Fatal(err)
			}
			if v, _ := rec[tc.attr].(string); !strings.Contains(v, strings.Repeat("A", 100)) || !strings.HasSuffix(v, " bytes cut)") {
				t.Errorf("audit line %q does not hold the cut %s", audit, tc.attr)
			}
		})
	}
}

// The store's drive errors repeat a path whole: the client gets it cut at
// MaxErrorMessageBytes.
func TestHugeDrivePathBounded(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	path := strings.Repeat("p", 1<<20)
	for _, call := range []func() error{
		func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: "a:b", Drive: "d", Path: path}))
			return err
		},
		func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: "a:b", Drive: "d", Path: path}))
			return err
		},
	} {
		err := call()
		if err == nil {
			t.Fatal("no error for a 1 MiB path")
		}
		if msg := errMessage(err); len(msg) > controlapi.MaxErrorMessageBytes+32 {
			t.Errorf("%v: the message is %d bytes: %.300s…", connect.CodeOf(err), len(msg), msg)
		}
	}
}

// An error that repeats a huge value whole, wherever it was made, reaches
// the client and the node's log cut to MaxErrorMessageBytes, with its code
// and metadata.
func TestErrorMessageBounded(t *testing.T) {
	huge := strings.Repeat("p", 1<<20)
	var log bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&log, nil))
	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{fmt.Errorf("install a:b: approval of our@x:y:z %s for x:y:z: %w", huge, install.ErrNotRequested), connect.CodeInvalidArgument},
		{fmt.Errorf("something unforeseen about %s", huge), connect.CodeInternal},
		{connect.NewError(connect.CodeAborted, errors.New(huge)), connect.CodeAborted},
	} {
		log.Reset()
		err := controlapi.ToConnect(logger, "/p", tc.err)
		if got := connect.CodeOf(err); got != tc.code {
			t.Errorf("code %v, want %v", got, tc.code)
		}
		if msg := errMessage(err); len(msg) > controlapi.MaxErrorMessageBytes+32 {
			t.Errorf("%v: the client's message is %d bytes", tc.code, len(msg))
		} else if tc.code != connect.CodeInternal && !strings.HasSuffix(msg, " bytes cut)") {
			t.Errorf("%v: message %.100q… does not say it was cut", tc.code, msg)
		}
		if log.Len() > controlapi.MaxErrorMessageBytes+512 {
			t.Errorf("%v: the log line is %d bytes", tc.code, log.Len())
		}
		if tc.code == connect.CodeInternal && !strings.Contains(log.String(), "bytes cut)") {
			t.Errorf("the internal error's log line %.200q… does not say it was cut", log.String())
		}
	}

	// A *connect.Error keeps its metadata when cut.
	ce := connect.NewError(connect.CodeAborted, errors.New(huge))
	ce.Meta().Set("Retry-After", "1")
	var got *connect.Error
	if !errors.As(controlapi.ToConnect(logger, "/p", ce), &got) || got.Meta().Get("Retry-After") != "1" {
		t.Errorf("the cut error lost its metadata: %v", got.Meta())
	}
	// One that fits is passed as it is.
	small := connect.NewError(connect.CodeAborted, errors.New("as is"))
	if err := controlapi.ToConnect(logger, "/p", small); err != small {
		t.Errorf("ToConnect(%v) = %v, want it unchanged", small, err)
	}
}

// lines returns every line logged so far.
func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(b.buf.String(), "\n"), "\n")
}
