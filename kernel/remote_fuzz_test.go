package kernel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"
)

// fuzzTransport records what the kernel under fuzzing sends back.
type fuzzTransport struct {
	mu   sync.Mutex
	sent []*RemoteMessage
}

func (f *fuzzTransport) Send(m *RemoteMessage) error {
	f.mu.Lock()
	f.sent = append(f.sent, m)
	f.mu.Unlock()
	return nil
}

func (f *fuzzTransport) Revoke(string, SignedCapability) {}

func (f *fuzzTransport) take() []*RemoteMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

// seededKeyring is a testKeyring whose key comes from a fixed seed.
func seededKeyring(node string, seed byte) *testKeyring {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	return &testKeyring{node: node, priv: priv, pubs: map[string]ed25519.PublicKey{node: priv.Public().(ed25519.PublicKey)}}
}

// FuzzReceive hands Receive arbitrary frames from node-a: it must never
// panic, never deliver a request it refuses, and deliver only requests
// that are valid: from node-a, to a process here that holds the network
// capability, public or with its messaging capability signed here, and
// within the limits. Answers match nothing (no request was sent) and are
// only counted late. sign and signMsg make the harness sign the attached
// capability (by its issuer node, if known) and the messaging capability
// (by this node), so that the fuzzer reaches the paths past the
// signature checks.
func FuzzReceive(f *testing.F) {
	f.Add(uint8(1), uint64(1), "node-a", "c:app:test", "node-b", "echo:app:test", false, int64(time.Second), []byte("hi"), "", "", "", []byte(nil), false, false, uint8(0), []byte(nil))
	f.Add(uint8(1), uint64(2), "node-a", "c:app:test", "node-b", "private:app:test", true, int64(0), []byte("x"), "meta", "node-a@c:app:test", `"messaging"`, []byte(nil), true, true, uint8(0), []byte("blob"))
	f.Add(uint8(1), uint64(3), "node-a", "c:app:test", "node-b", "private:app:test", false, int64(time.Second), []byte(nil), "", "node-b@private:app:test", `"messaging"`, []byte("bad"), false, false, uint8(0), []byte(nil))
	f.Add(uint8(1), uint64(4), "node-c", "c:app:test", "node-b", "echo:app:test", false, int64(time.Second), []byte(nil), "", "", "", []byte(nil), false, false, uint8(0), []byte(nil))
	f.Add(uint8(2), uint64(5), "node-a", "c:app:test", "node-b", "echo:app:test", false, int64(0), []byte("r"), "", "node-a@c:app:test", `{"a":1}`, []byte(nil), true, false, uint8(0), []byte(nil))
	f.Add(uint8(3), uint64(6), "node-a", "c:app:test", "node-b", "echo:app:test", false, int64(0), []byte(nil), "", "", "", []byte(nil), false, false, uint8(6), []byte(nil))
	f.Add(uint8(1), uint64(7), "node-a", "c:app:test", "node-b", "closed:app:test", false, int64(-1), []byte(nil), "\xff", "", "", []byte(nil), false, false, uint8(0), []byte(nil))
	f.Add(uint8(1), uint64(8), "node-a", "c:app:test", "node-b", "kernel:sys:weft", false, int64(time.Hour), make([]byte, 300), "", "our@c:app:test", `"x"`, []byte(nil), true, false, uint8(0), []byte(nil))

	keysA := seededKeyring("node-a", 1)
	keysB := seededKeyring("node-b", 2)
	keysB.pubs["node-a"] = keysA.pubs["node-a"]
	k, err := New(Config{Keyring: keysB, Limits: Limits{MaxBodyBytes: 256, MaxTimeout: time.Minute}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { k.Close(context.Background()) })
	tr := &fuzzTransport{}
	k.SetTransport(tr)
	drain := ProcessFunc(func(ctx context.Context, h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	for _, s := range []Spec{
		{ID: pid("echo:app:test"), Public: true, Capabilities: []Capability{netCap}, Process: drain},
		{ID: pid("private:app:test"), Capabilities: []Capability{netCap}, Process: drain},
		{ID: pid("closed:app:test"), Public: true, Process: drain},
	} {
		if err := k.Start(s); err != nil {
			f.Fatal(err)
		}
	}
	tap, err := k.Tap(TapOptions{Buffer: 1024})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(tap.Close)

	f.Fuzz(func(t *testing.T, kind uint8, id uint64, srcNode, srcProc, dstNode, dstProc string, inherit bool, timeout int64, body []byte, metadata, capIssuer, capParams string, capSig []byte, sign, signMsg bool, errKind uint8, blob []byte) {
		src, _ := ParseProcessId(srcProc)
		dst, _ := ParseProcessId(dstProc)
		m := &RemoteMessage{
			Kind:            Kind(kind),
			ID:              id,
			Source:          Address{Node: srcNode, Process: src},
			Target:          Address{Node: dstNode, Process: dst},
			Inherit:         inherit,
			ExpectsResponse: time.Duration(timeout),
			Body:            body,
			Metadata:        metadata,
		}
		if blob != nil {
			m.Blob = &Blob{Mime: "application/octet-stream", Bytes: blob}
		}
		if capIssuer != "" {
			issuer, _ := ParseAddress(capIssuer)
			c := Capability{Issuer: issuer, Params: capParams}
			sig := capSig
			if sign {
				switch issuer.Node {
				case "node-a":
					sig = keysA.Sign(EncodeCapability(c))
				case "node-b":
					sig = keysB.Sign(EncodeCapability(c))
				}
			}
			m.Capabilities = []SignedCapability{{Capability: c, Signature: sig}}
		}
		if signMsg {
			c := Capability{Issuer: m.Target, Params: MessagingParams}
			m.Messaging = &SignedCapability{Capability: c, Signature: keysB.Sign(EncodeCapability(c))}
		}
		if errKind != 0 {
			m.Error = &SendError{Kind: ErrorKind(errKind), Target: m.Target, Detail: "fuzz"}
		}
		late := k.Stats().LateResponses
		err := k.Receive("node-a", m)

		var delivered []Envelope
		for len(tap.C) > 0 {
			if e := <-tap.C; e.Kind == KindRequest {
				delivered = append(delivered, e)
			}
		}
		answers := tr.take()
		switch {
		case err != nil && len(delivered) > 0:
			t.Fatalf("Receive refused %+v (%v) but delivered it", m, err)
		case err == nil && m.Kind == KindRequest && len(delivered) != 1:
			t.Fatalf("Receive accepted %+v but delivered %d requests", m, len(delivered))
		case m.Kind != KindRequest && len(delivered) > 0:
			t.Fatalf("a %v frame delivered a request", m.Kind)
		}
		if srcNode != "node-a" && !errors.Is(err, ErrSpoofed) {
			t.Fatalf("a frame from node-a claiming %q: %v, want ErrSpoofed", srcNode, err)
		}
		if err == nil && m.Kind == KindRequest {
			e := delivered[0]
			tp := k.lookup(m.Target.Process)
			switch {
			case m.Source.Validate() != nil || m.Target.Node != "node-b" || tp == nil:
				t.Fatalf("delivered a request from %s to %s", m.Source, m.Target)
			case tp.id == pid("closed:app:test"):
				t.Fatal("delivered to a process without the network capability")
			case !tp.public && !signMsg:
				t.Fatal("delivered to a private process without its messaging capability")
			case len(body) > 256 || m.ExpectsResponse < 0 || m.ExpectsResponse > time.Minute:
				t.Fatalf("delivered a request over the limits: %d bytes, timeout %v", len(body), m.ExpectsResponse)
			case e.Source != m.Source || e.Target != m.Target:
				t.Fatalf("delivered %s → %s, sent %s → %s", e.Source, e.Target, m.Source, m.Target)
			}
		}
		if m.Kind == KindResponse || m.Kind == KindError {
			if err != nil && !errors.Is(err, ErrSpoofed) {
				t.Fatalf("an answer matching nothing: %v", err)
			}
			if err == nil && k.Stats().LateResponses != late+1 {
				t.Fatal("an answer matching nothing was not counted late")
			}
		}
		// Answers go to node-a, from node-b: refusals of this frame, and
		// timeouts of requests accepted earlier (the processes never
		// answer).
		refused := false
		for _, a := range answers {
			if a.Kind != KindError || a.Source.Node != "node-b" || a.Target.Node != "node-a" || a.Error == nil {
				t.Fatalf("answered %+v", a)
			}
			refused = refused || a.ID == m.ID
		}
		var se *SendError
		if m.Kind == KindRequest && errors.As(err, &se) && m.ExpectsResponse > 0 && !refused {
			t.Fatalf("refused %+v with %v but did not answer", m, se)
		}
	})
}
