package cli

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/procstore"
)

// quiet is an in-process driver that answers nothing.
type quiet struct{}

func (quiet) Start(context.Context, driver.Start) error                { return nil }
func (quiet) Handle(context.Context, *driver.Request) *driver.Response { return nil }

// serveNode serves the control API of a real kernel whose drivers are
// decls, run by a plugins.Manager, on a Unix socket, and returns the
// socket's path. No store and no Wasm: a node this small starts in
// milliseconds.
func serveNode(t *testing.T, decls ...plugins.Decl) string {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key})
	if err != nil {
		t.Fatal(err)
	}
	drivers, err := plugins.NewManager(k, procstore.New(k, nil, nil, nil), nil, decls)
	if err != nil {
		t.Fatal(err)
	}
	if err := drivers.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := drivers.Stop(ctx); err != nil {
			t.Errorf("stop drivers: %v", err)
		}
		if err := k.Close(ctx); err != nil {
			t.Errorf("close kernel: %v", err)
		}
	})
	h, err := controlapi.New(controlapi.Config{Kernel: k, Drivers: drivers})
	if err != nil {
		t.Fatal(err)
	}
	return serveHandler(t, h)
}

// serveHandler serves h on a Unix socket until the test ends, and
// returns the socket's path.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnContext: controlapi.ConnContext}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// A driver is a process of the node: weft ps lists it, and weft drivers
// adds what only a driver has.
func TestDriversOnRealNode(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	sock := serveNode(t,
		plugins.Decl{Name: "quiet", Factory: func() driver.Driver { return quiet{} }},
		plugins.Decl{Name: "gone", Path: missing, SHA256: strings.Repeat("ab", 32)},
	)

	res := weft(t, sock, "ps", "drivers:weft")
	res.want(t, 0)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "quiet:drivers:weft running 0 0 0 no") {
		t.Errorf("ps drivers:weft printed\n%s\nwant the running driver alone (a refused one is no process)", res.stdout)
	}

	res = weft(t, sock, "drivers")
	res.want(t, 0)
	lines = strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("drivers printed\n%s\nwant a header and two drivers", res.stdout)
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "quiet running - 0 0" {
		t.Errorf("quiet row = %q", got)
	}
	if got := strings.Join(strings.Fields(lines[2]), " "); !strings.HasPrefix(got, "gone refused - 0 0 driver gone: binary:") || !strings.Contains(got, missing) {
		t.Errorf("gone row = %q, want refused for the missing binary", got)
	}

	weft(t, sock, "drivers", "restart", "quiet").want(t, 0, "restarted quiet (running)")
	weft(t, sock, "drivers", "restart", "gone").wantErr(t, ExitNode, "weft: drivers restart gone: failed_precondition: driver gone: binary:", missing)
	weft(t, sock, "drivers", "restart", "nobody").wantErr(t, ExitNode, `not_found: driver "nobody": no such driver`)
	weft(t, sock, "drivers", "restart", "quiet:drivers:weft").wantErr(t, ExitNode, "invalid_argument: name:")
}
