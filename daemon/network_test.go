package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/store"
)

// TestRevocationsInTheStore: the kernel's marks go into the store and
// come back, equal, after it is opened again.
func TestRevocationsInTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := kernel.ParseAddress("k51qzi5uqu5dh9ihj4p2v5sl3hxvv27ryx2w0xrsv6jmmqi91t9xp8p0kyziyb@chat:chat:examples")
	if err != nil {
		t.Fatal(err)
	}
	caps := []kernel.Capability{
		{Issuer: issuer, Params: kernel.MessagingParams},
		{Issuer: issuer, Params: `{"db":"index","kind":"read"}`},
	}
	r := revocations{st}
	for _, c := range append(caps, caps[0]) {
		if err := r.AddRevocation(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r = revocations{st}
	got, err := r.Revocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !(reflect.DeepEqual(got, caps) || reflect.DeepEqual(got, []kernel.Capability{caps[1], caps[0]})) {
		t.Fatalf("Revocations after reopening = %v, want %v", got, caps)
	}
	if err := r.RemoveRevocation(caps[0]); err != nil {
		t.Fatal(err)
	}
	if got, err = r.Revocations(); err != nil || !reflect.DeepEqual(got, caps[1:]) {
		t.Fatalf("Revocations after removing one = %v, %v; want %v", got, err, caps[1:])
	}
}

func TestDecodeCapabilityRefuses(t *testing.T) {
	good := kernel.EncodeCapability(kernel.Capability{Issuer: kernel.Address{Node: "node", Process: kernel.ProcessId{Name: "a", Package: "b", Publisher: "c"}}, Params: `"x"`})
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"no domain", []byte("hello"), "no weft-capability-v1 domain"},
		{"cut in the issuer length", good[:len(capabilityDomain)+2], "cut short before its issuer length"},
		{"issuer longer than the rest", good[:len(capabilityDomain)+6], "issuer of"},
		{"cut in the params", good[:len(good)-1], "params of"},
		{"trailing bytes", append(good[:len(good):len(good)], 'x'), "after its params"},
		{"bad issuer", kernel.EncodeCapability(kernel.Capability{Issuer: kernel.Address{Node: "N", Process: kernel.ProcessId{Name: "a", Package: "b", Publisher: "c"}}, Params: `"x"`}), "issuer"},
	} {
		if _, err := decodeCapability(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: decodeCapability = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	c, err := decodeCapability(good)
	if err != nil || kernel.EncodeCapability(c) == nil || string(kernel.EncodeCapability(c)) != string(good) {
		t.Errorf("decodeCapability(good) = %v, %v; want it back as encoded", c, err)
	}
}

// FuzzDecodeCapability: decoding never panics, and what decodes encodes
// back to the same bytes.
func FuzzDecodeCapability(f *testing.F) {
	f.Add(kernel.EncodeCapability(kernel.Capability{Issuer: kernel.Address{Node: "node", Process: kernel.ProcessId{Name: "a", Package: "b", Publisher: "c"}}, Params: `"messaging"`}))
	f.Add([]byte(capabilityDomain))
	f.Add([]byte(capabilityDomain + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCapability(b)
		if err != nil {
			return
		}
		if got := kernel.EncodeCapability(c); string(got) != string(b) {
			t.Fatalf("decoded %q and encoded it again as %q", b, got)
		}
	})
}

func TestSetP2PListen(t *testing.T) {
	for _, tc := range []struct {
		values     []string
		enabled    bool
		listen     []string
		wantErrHas string
	}{
		{nil, true, DefaultListen(), ""},
		{[]string{"/ip4/127.0.0.1/tcp/0"}, true, []string{"/ip4/127.0.0.1/tcp/0"}, ""},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, true, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, ""},
		{[]string{"none"}, false, DefaultListen(), ""},
		{[]string{"none", "/ip4/127.0.0.1/tcp/0"}, false, nil, "cannot go with"},
		{[]string{" "}, false, nil, "empty address"},
	} {
		c := DefaultConfig()
		err := c.SetP2PListen(tc.values)
		if tc.wantErrHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrHas) {
				t.Errorf("SetP2PListen(%q) = %v, want an error saying %q", tc.values, err, tc.wantErrHas)
			}
			continue
		}
		if err != nil || c.Network.Enabled != tc.enabled || !reflect.DeepEqual(c.Network.Listen, tc.listen) {
			t.Errorf("SetP2PListen(%q) = %v: enabled %v, listen %q; want %v, %q", tc.values, err, c.Network.Enabled, c.Network.Listen, tc.enabled, tc.listen)
		}
	}
}

func TestNetworkConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"[network]\nlisten = [\"\"]\n", "network.listen lists an empty address"},
		{"[network]\ndial_timeout = \"0s\"\n", "network.dial_timeout"},
		{"[network]\ninbound_rate = -1.0\n", "network.inbound_rate"},
		{"[network.limits]\nconnections_low = 300\n", "connections_low (300) is above"},
		{"[network.relay_service]\nmax_circuits = 0\n", "network.relay_service.max_circuits"},
		{"[network]\ndht = \"on\"\n", `network.dht is "on": want "off", "client", "server" or "auto"`},
		{"[network]\ndht = \"\"\n", `network.dht is ""`},
		{"[network]\nmdns = true\nlisten = []\n", "network.mdns is on but network.listen is empty"},
	} {
		c := DefaultConfig()
		if err := ParseConfig(&c, "f.toml", []byte(tc.file)); err != nil {
			t.Fatalf("%q: %v", tc.file, err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: Validate = %v, want an error saying %q", tc.file, err, tc.want)
		}
	}
	c := DefaultConfig()
	if err := ParseConfig(&c, "f.toml", []byte("[network.dht]\nmode = \"server\"\n")); err == nil {
		t.Errorf("[network.dht] as a table: parsed, want it refused: network.dht is a string")
	}
}

// TestNetworkDiscoveryConfig: mdns and dht are off by default and reach
// p2p.Config as set.
func TestNetworkDiscoveryConfig(t *testing.T) {
	c := DefaultConfig()
	if got := c.Network.p2pConfig(&node{}); got.MDNS || got.DHT != p2p.DHTOff {
		t.Fatalf("defaults: MDNS %v, DHT %q; want off and off", got.MDNS, got.DHT)
	}
	for _, mode := range []p2p.DHTMode{p2p.DHTOff, p2p.DHTClient, p2p.DHTServer, p2p.DHTAuto} {
		c := DefaultConfig()
		file := fmt.Sprintf("[network]\nmdns = true\ndht = %q\n", mode)
		if err := ParseConfig(&c, "f.toml", []byte(file)); err != nil {
			t.Fatalf("%q: %v", file, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%q: Validate: %v", file, err)
		}
		if got := c.Network.p2pConfig(&node{}); !got.MDNS || got.DHT != mode {
			t.Errorf("%q: p2p.Config MDNS %v, DHT %q; want true and %q", file, got.MDNS, got.DHT, mode)
		}
	}
}

// TestRevocationOutlivesTheKernel: a capability revoked on a kernel whose
// marks are kept in the store is still refused by the next kernel on the
// same store, as after a restart of weftd.
func TestRevocationOutlivesTheKernel(t *testing.T) {
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	idle := kernel.ProcessFunc(func(_ context.Context, h *kernel.Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	p := kernel.ProcessId{Name: "p", Package: "test", Publisher: "weft-test"}
	open := func() *kernel.Kernel {
		k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st, Revocations: revocations{st}})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Start(kernel.Spec{ID: p, Process: idle}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	closeK := func(k *kernel.Kernel) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}

	k := open()
	c := kernel.Capability{Issuer: k.Address(p), Params: `{"db":"index"}`}
	sc, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Revoke(c); err != nil {
		t.Fatal(err)
	}
	closeK(k)

	k = open()
	defer closeK(k)
	if err := k.ImportCapability(p, sc); !errors.Is(err, kernel.ErrRevoked) {
		t.Fatalf("ImportCapability of a capability revoked before the restart = %v, want ErrRevoked", err)
	}
}
