package install_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/procstore"
)

// docJSONBlocks returns the ```json blocks of a docs page, in order.
func docJSONBlocks(t *testing.T, page string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	for {
		_, after, ok := strings.Cut(rest, "```json\n")
		if !ok {
			return blocks
		}
		block, after, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatalf("%s: unterminated json block", page)
		}
		blocks = append(blocks, block)
		rest = after
	}
}

// TestManifestDocExample installs the example of docs/manifest.md, as the
// page gives it, and checks what the page says each process holds.
func TestManifestDocExample(t *testing.T) {
	blocks := docJSONBlocks(t, "manifest.md")
	if len(blocks) != 2 {
		t.Fatalf("docs/manifest.md has %d json blocks, want the example's metadata.json and manifest.json", len(blocks))
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	assemble(t, dir, "indexer", spawnChildWAT)
	assemble(t, filepath.Join(dir, "bin"), "web", spawnChildWAT)
	for name, text := range map[string]string{packages.MetadataFile: blocks[0], packages.ManifestFile: blocks[1]} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k, host := bareNode(t)
	pkg, err := packages.LoadDir(dir, k.Limits())
	if err != nil {
		t.Fatalf("the example of docs/manifest.md does not load: %v", err)
	}
	if _, err := install.Start(k, host, pkg, install.Approval{All: true}); err != nil {
		t.Fatalf("the example of docs/manifest.md does not install: %v", err)
	}

	node := k.NodeID()
	at := func(id string) kernel.Address { return kernel.Address{Node: node, Process: pid(id)} }
	indexer, web := pid("indexer:search:alice.dev"), pid("web:search:alice.dev")
	holds := map[kernel.ProcessId][]kernel.Capability{
		indexer: {
			{Issuer: at("echo:echo:examples"), Params: kernel.MessagingParams},
			{Issuer: at("kernel:sys:weft"), Params: kernel.NetworkParams},
			procstore.KVCapability(node, "notes:examples", "index", procstore.Read),
			procstore.DriveCapability(node, "notes:examples", "files", procstore.Read),
		},
		web: {
			{Issuer: at("indexer:search:alice.dev"), Params: kernel.MessagingParams},
			{Issuer: at("indexer:search:alice.dev"), Params: `{"role":"reader"}`},
		},
	}
	for id, want := range holds {
		signed, err := k.CapabilitiesOf(id)
		if err != nil {
			t.Fatal(err)
		}
		var got []kernel.Capability
		for _, c := range signed {
			got = append(got, c.Capability)
		}
		for _, c := range want {
			if !slices.Contains(got, c) {
				t.Errorf("%s does not hold %s; it holds %v", id, c, got)
			}
		}
	}
	for _, p := range k.Processes() {
		switch p.ID {
		case indexer:
			if p.Public || p.OnExit.Kind != kernel.OnExitRestart {
				t.Errorf("indexer: public %v, on_exit %v; want private, Restart", p.Public, p.OnExit)
			}
		case web:
			if !p.Public || p.OnExit.Kind != kernel.OnExitRequests || len(p.OnExit.Requests) != 1 {
				t.Fatalf("web: public %v, on_exit %v; want public, one request", p.Public, p.OnExit)
			}
			r := p.OnExit.Requests[0]
			if r.Target != (kernel.Address{Node: kernel.OurNode, Process: indexer}) || string(r.Body) != "web stopped" || r.Metadata != "exit" {
				b, _ := json.Marshal(r)
				t.Errorf("web's on_exit request is %s", b)
			}
		}
	}
}
