package packages

import (
	"errors"
	"testing"

	"github.com/weftos/weft/kernel"
)

var fuzzPackage = kernel.PackageId{Package: "echo", Publisher: "examples"}

// FuzzManifest: any bytes either parse into processes that keep every
// promise of ParseManifest, or are refused with an *Error; never a panic.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`[{"process_name": "a", "process_wasm_path": "/a.wasm", "on_exit": {"Requests": [{"target": "our@a:b:c", "body": "AA=="}]}}]`))
	f.Add([]byte(`[{"process_name": "a", "process_wasm_path": "/../a.wasm", "request_capabilities": [{"process": "x@a:b:c", "params": {"b": 1, "a": [true]}}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		procs, err := ParseManifest(data, fuzzPackage, kernel.Limits{})
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != ManifestFile {
				t.Fatalf("error %v is not a manifest.json *Error", err)
			}
			return
		}
		checkProcesses(t, fuzzPackage, procs)
	})
}

// checkProcesses checks what a successful parse promises.
func checkProcesses(t *testing.T, pkg kernel.PackageId, procs []Process) {
	t.Helper()
	if len(procs) == 0 {
		t.Fatal("parsed a manifest with no process")
	}
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.Name] {
			t.Fatalf("process %q twice", p.Name)
		}
		seen[p.Name] = true
		if err := p.ID.Validate(); err != nil || p.ID.Name != p.Name || p.ID.PackageId() != pkg {
			t.Fatalf("process id %v for %q: %v", p.ID, p.Name, err)
		}
		if clean, err := CleanWasmPath(p.WasmPath); err != nil || clean != p.WasmPath {
			t.Fatalf("wasm path %q is not clean: %q, %v", p.WasmPath, clean, err)
		}
		for _, c := range p.RequestCapabilities {
			checkCapability(t, c)
		}
		for _, g := range p.GrantCapabilities {
			checkCapability(t, g.Capability)
			if g.Capability.Issuer.Process != p.ID || g.To.Validate() != nil {
				t.Fatalf("grant %+v by %v", g, p.ID)
			}
		}
		for _, to := range p.GrantTo {
			if err := to.Validate(); err != nil {
				t.Fatal(err)
			}
		}
		if p.OnExit.Kind != kernel.OnExitRequests && len(p.OnExit.Requests) > 0 {
			t.Fatalf("on_exit %v with requests", p.OnExit)
		}
		for _, r := range p.OnExit.Requests {
			if err := r.Target.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func checkCapability(t *testing.T, c kernel.Capability) {
	t.Helper()
	if err := c.Issuer.Validate(); err != nil {
		t.Fatalf("capability %v: %v", c, err)
	}
	if canon, err := kernel.CanonicalParams(c.Params, 0); err != nil || canon != c.Params {
		t.Fatalf("params %q are not canonical: %q, %v", c.Params, canon, err)
	}
}

// FuzzLoadZip: any bytes either load as a package whose processes all have
// their module, or are refused with an *Error; never a panic, and never
// more memory than the limits allow.
func FuzzLoadZip(f *testing.F) {
	f.Add(zipFiles(f, goodFiles()))
	f.Add(zipFiles(f, map[string][]byte{"metadata.json": []byte(goodMetadata)}))
	f.Add(buildZip(f, zipEntry{name: "../x.wasm", data: goodWasm()}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	lim := kernel.Limits{MaxModuleBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := loadZipBytes(data, lim)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *packages.Error", err, err)
			}
			return
		}
		if err := p.ID.Validate(); err != nil || p.ID.Publisher == ReservedPublisher || ValidateVersion(p.Version) != nil {
			t.Fatalf("loaded package %v version %q: %v", p.ID, p.Version, err)
		}
		checkProcesses(t, p.ID, p.Processes)
		for _, proc := range p.Processes {
			if _, ok := p.Modules[proc.WasmPath]; !ok {
				t.Fatalf("process %q: module %q not loaded", proc.Name, proc.WasmPath)
			}
		}
		for name, b := range p.Modules {
			if int64(len(b)) > lim.MaxModuleBytes {
				t.Fatalf("module %q is %d bytes", name, len(b))
			}
		}
	})
}
