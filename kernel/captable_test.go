package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCanonicalParams(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"messaging"`, `"messaging"`},
		{` { "b" : 1 , "a" : [ true , null , "x" ] } `, `{"a":[true,null,"x"],"b":1}`},
		{`{"z":{"y":1,"x":2}}`, `{"z":{"x":2,"y":1}}`},
		{`"<&>"`, `"<&>"`},
		{`"\u00e9\n\u0001"`, "\"\u00e9\\n\\u0001\""},
		{`1.50e3`, `1.50e3`},
		{`{}`, `{}`},
		{`[]`, `[]`},
	}
	for _, c := range cases {
		got, err := CanonicalParams(c.in, 0)
		if err != nil || got != c.want {
			t.Errorf("CanonicalParams(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		again, err := CanonicalParams(got, 0)
		if err != nil || again != got {
			t.Errorf("not idempotent on %q: %q, %v", got, again, err)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":1,"a":2}`, `1 2`, `{"a"}`, `nope`, "\"\xff\"", `[` + string(make([]byte, 0)) + `]]`} {
		if _, err := CanonicalParams(bad, 0); err == nil {
			t.Errorf("CanonicalParams(%q) accepted", bad)
		}
	}
	deep := ""
	for i := 0; i < MaxCapabilityParamsDepth+1; i++ {
		deep += "["
	}
	for i := 0; i < MaxCapabilityParamsDepth+1; i++ {
		deep += "]"
	}
	if _, err := CanonicalParams(deep, 0); err == nil {
		t.Error("too deep params accepted")
	}
	if _, err := CanonicalParams(`"0123456789"`, 5); err == nil {
		t.Error("over-size params accepted")
	}
}

func TestMessagingCapabilityGrantAndRevoke(t *testing.T) {
	e := newEnv(t)
	e.start("private:p:test", false, echo)
	_, a := e.driven("a:app:test", false)
	_, b := e.driven("b:app:test", false)
	send := func(d *driven) error {
		var err error
		d.run(t, func(h *Handle) { _, err = h.Send(&Request{Target: addr("our@private:p:test")}) })
		return err
	}
	wantKind(t, send(a), ErrNoCapability)
	msg := Capability{Issuer: addr("our@private:p:test"), Params: MessagingParams}
	if err := e.k.Grant(msg, pid("a:app:test")); err != nil {
		t.Fatal(err)
	}
	if err := send(a); err != nil {
		t.Fatalf("with the capability: %v", err)
	}
	// a attaches its copy to a message for b: b holds it too.
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@b:app:test"), Capabilities: []Capability{msg}}); !errors.Is(err, &SendError{Kind: ErrNoCapability}) {
			t.Errorf("a may not message b yet: %v", err)
		}
	})
	if err := e.k.Grant(Capability{Issuer: addr("our@b:app:test"), Params: MessagingParams}, pid("a:app:test")); err != nil {
		t.Fatal(err)
	}
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@b:app:test"), Capabilities: []Capability{msg}}); err != nil {
			t.Errorf("attach: %v", err)
		}
	})
	m := b.await(t)
	if len(m.Capabilities) != 1 || m.Capabilities[0].Issuer.Node != "node-a" || m.Capabilities[0].Params != MessagingParams {
		t.Fatalf("b got capabilities %+v", m.Capabilities)
	}
	if err := send(b); err != nil {
		t.Fatalf("b with the attached copy: %v", err)
	}
	// Revoking reaches every copy.
	if err := e.k.Revoke(msg); err != nil {
		t.Fatal(err)
	}
	wantKind(t, send(a), ErrNoCapability)
	wantKind(t, send(b), ErrNoCapability)
	// And can be granted again afterwards.
	if err := e.k.Grant(msg, pid("b:app:test")); err != nil {
		t.Fatal(err)
	}
	if err := send(b); err != nil {
		t.Fatalf("re-granted: %v", err)
	}
}

func TestAttachOnlyWhatYouHoldOrIssue(t *testing.T) {
	e := newEnv(t)
	_, target := e.driven("t:p:test", true)
	_, a := e.driven("a:app:test", false)
	a.run(t, func(h *Handle) {
		// Not held, not issued.
		_, err := h.Send(&Request{Target: addr("our@t:p:test"), Capabilities: []Capability{{Issuer: addr("our@other:p:test"), Params: `"messaging"`}}})
		wantKind(t, err, ErrNoCapability)
		// Issued by a: minted on the fly, with any params.
		_, err = h.Send(&Request{Target: addr("our@t:p:test"), Capabilities: []Capability{{Issuer: addr("our@a:app:test"), Params: `{"read": true, "db": "x"}`}}})
		if err != nil {
			t.Fatalf("attach own capability: %v", err)
		}
		// Malformed params are refused clearly.
		_, err = h.Send(&Request{Target: addr("our@t:p:test"), Capabilities: []Capability{{Issuer: addr("our@a:app:test"), Params: `{"read":`}}})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad params: %v", err)
		}
	})
	m := target.await(t)
	if got := m.Capabilities[0].Params; got != `{"db":"x","read":true}` {
		t.Fatalf("params %q are not canonical", got)
	}
	target.run(t, func(h *Handle) {
		if !h.Has(Capability{Issuer: addr("our@a:app:test"), Params: `{"read":true,"db":"x"}`}) {
			t.Error("the receiver does not hold the attached capability")
		}
		if err := h.Drop(Capability{Issuer: addr("our@a:app:test"), Params: `{"db":"x","read":true}`}); err != nil {
			t.Errorf("drop: %v", err)
		}
		if err := h.Drop(Capability{Issuer: addr("our@a:app:test"), Params: `{"db":"x","read":true}`}); !errors.Is(err, ErrNotHeld) {
			t.Errorf("second drop: %v", err)
		}
	})
}

func TestGrantOnlyWhatYouIssue(t *testing.T) {
	e := newEnv(t)
	_, a := e.driven("a:app:test", false)
	e.driven("b:app:test", false)
	e.start("private:p:test", false, echo)
	a.run(t, func(h *Handle) {
		err := h.Grant(Capability{Issuer: addr("our@private:p:test"), Params: MessagingParams}, pid("b:app:test"))
		if !errors.Is(err, ErrNotPermitted) {
			t.Errorf("granting another's capability: %v", err)
		}
		if err := h.Grant(Capability{Issuer: addr("our@a:app:test"), Params: MessagingParams}, pid("b:app:test")); err != nil {
			t.Errorf("granting its own: %v", err)
		}
		if err := h.Revoke(Capability{Issuer: addr("our@private:p:test"), Params: MessagingParams}); !errors.Is(err, ErrNotPermitted) {
			t.Errorf("revoking another's capability: %v", err)
		}
	})
	caps, err := e.k.CapabilitiesOf(pid("b:app:test"))
	if err != nil || !slices.ContainsFunc(caps, func(c SignedCapability) bool { return c.Issuer.Process == pid("a:app:test") }) {
		t.Fatalf("b holds %+v, %v", caps, err)
	}
	for _, c := range caps {
		if !e.keys.Verify("node-a", EncodeCapability(c.Capability), c.Signature) {
			t.Fatalf("capability %s is not signed by the node", c.Capability)
		}
	}
}

func TestForgeriesRefusedOnImport(t *testing.T) {
	e := newEnv(t)
	e.driven("a:app:test", false)
	good, err := e.k.Sign(Capability{Issuer: addr("our@private:p:test"), Params: `{"x":1}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forgeries(good) {
		t.Run(f.name, func(t *testing.T) {
			if err := e.k.ImportCapability(pid("a:app:test"), f.sc); err == nil {
				t.Fatal("forgery accepted")
			}
		})
	}
	if err := e.k.ImportCapability(pid("a:app:test"), good); err != nil {
		t.Fatalf("the genuine capability: %v", err)
	}
	// A capability signed by another node verifies with that node's key.
	other := newKeyring("node-b")
	e.keys.pubs["node-b"] = other.pubs["node-b"]
	c := Capability{Issuer: addr("node-b@svc:p:test"), Params: MessagingParams}
	sc := SignedCapability{Capability: c, Signature: other.Sign(EncodeCapability(c))}
	if err := e.k.ImportCapability(pid("a:app:test"), sc); err != nil {
		t.Fatalf("foreign capability: %v", err)
	}
	sc.Signature = e.keys.Sign(EncodeCapability(c)) // signed by the wrong node
	if err := e.k.ImportCapability(pid("b:app:test"), sc); err == nil {
		t.Fatal("capability signed by the wrong node accepted")
	}
	// This node cannot mint for another.
	if err := e.k.Grant(Capability{Issuer: addr("node-c@svc:p:test"), Params: MessagingParams}, pid("a:app:test")); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("minting another node's capability: %v", err)
	}
}

type forgery struct {
	name string
	sc   SignedCapability
}

// forgeries flips one bit in each of issuer, params and signature, and
// makes the usual malformed variants.
func forgeries(good SignedCapability) []forgery {
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	var out []forgery
	sc := good
	sc.Signature = slices.Clone(good.Signature)
	sc.Signature[7] ^= 0x10
	out = append(out, forgery{"flipped signature bit", sc})
	sc = good
	sc.Params = flip(good.Params, 2) // {"y":1}
	out = append(out, forgery{"flipped params bit", sc})
	sc = good
	sc.Issuer.Process.Name = flip(good.Issuer.Process.Name, 0)
	out = append(out, forgery{"flipped issuer bit", sc})
	sc = good
	sc.Issuer.Node = flip(good.Issuer.Node, 0)
	out = append(out, forgery{"flipped issuer node bit", sc})
	sc = good
	sc.Params = `{ "x":1}`
	out = append(out, forgery{"non-canonical params", sc})
	sc = good
	sc.Signature = nil
	out = append(out, forgery{"no signature", sc})
	sc = good
	sc.Issuer.Node = OurNode
	out = append(out, forgery{"issuer node our", sc})
	return out
}

func TestForgeriesRefusedFromDisk(t *testing.T) {
	keys := newKeyring("node-a")
	store := newMemStore()
	e := newEnv(t, withKeys(keys), withStore(store))
	msg := Capability{Issuer: addr("our@svc:p:test"), Params: MessagingParams}
	other := Capability{Issuer: addr("our@svc:p:test"), Params: `{"x":1}`}
	e.start("holder:p:test", false, echo, func(s *Spec) {
		s.Persist = true
		s.Capabilities = []Capability{msg, other}
	})
	// Tamper with the stored record: one bit in each field of the second
	// capability, one at a time, each time on a fresh node.
	rec := store.table["holder:p:test"]
	var tr tableRecord
	if err := json.Unmarshal(rec, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Caps) != 3 { // msg, other, and its own... no: own messaging cap is not held
		t.Logf("record holds %d capabilities", len(tr.Caps))
	}
	idx := slices.IndexFunc(tr.Caps, func(c capJSON) bool { return c.Params == `{"x":1}` })
	if idx < 0 {
		t.Fatalf("record %s lacks the capability", rec)
	}
	tamper := map[string]func(c *capJSON){
		"signature": func(c *capJSON) { c.Sig = slices.Clone(c.Sig); c.Sig[0] ^= 1 },
		"params":    func(c *capJSON) { c.Params = `{"x":3}` },
		"issuer":    func(c *capJSON) { c.Issuer = "node-a@svd:p:test" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			tr2 := tr
			tr2.Caps = slices.Clone(tr.Caps)
			f(&tr2.Caps[idx])
			b, _ := json.Marshal(tr2)
			s2 := newMemStore()
			s2.table["holder:p:test"] = b
			e2 := newEnv(t, withKeys(keys), withStore(s2))
			rep, err := e2.k.Restore(func(id ProcessId, data []byte) (Process, error) {
				return ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) }), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Started) != 1 || len(rep.Refused["holder:p:test"]) != 1 || !errors.Is(rep.Refused["holder:p:test"][0], ErrForged) {
				t.Fatalf("report %+v", rep)
			}
			caps, _ := e2.k.CapabilitiesOf(pid("holder:p:test"))
			if len(caps) != len(tr.Caps)-1 {
				t.Fatalf("restored %d capabilities, want %d (the forgery dropped)", len(caps), len(tr.Caps)-1)
			}
			// The record was rewritten without the forgery.
			var after tableRecord
			json.Unmarshal(s2.table["holder:p:test"], &after)
			if len(after.Caps) != len(tr.Caps)-1 {
				t.Fatalf("stored record still holds %d capabilities", len(after.Caps))
			}
		})
	}
}

func TestGrantsPersistAcrossRestart(t *testing.T) {
	keys := newKeyring("node-a")
	store := newMemStore()
	e := newEnv(t, withKeys(keys), withStore(store))
	e.start("svc:p:test", false, echo, func(s *Spec) { s.Persist = true; s.Data = []byte("svc-data") })
	e.start("client:p:test", false, echo, func(s *Spec) { s.Persist = true; s.OnExit = OnExit{Kind: OnExitRestart} })
	if err := e.k.Grant(Capability{Issuer: addr("our@svc:p:test"), Params: MessagingParams}, pid("client:p:test")); err != nil {
		t.Fatal(err)
	}
	// A spawned child is not restored.
	_, parent := e.driven("parent:p:test", true, func(s *Spec) { s.Persist = true })
	parent.run(t, func(h *Handle) {
		if _, err := h.Spawn(ChildSpec{Name: "kid", Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) })}); err != nil {
			t.Error(err)
		}
	})
	if err := e.k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, withKeys(keys), withStore(store))
	var datas []string
	rep, err := e2.k.Restore(func(id ProcessId, data []byte) (Process, error) {
		datas = append(datas, string(data))
		if id == pid("parent:p:test") {
			return ProcessFunc(func(ctx context.Context, h *Handle) error { <-ctx.Done(); return nil }), nil
		}
		return ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) }), nil
	})
	if err != nil || len(rep.Failed) != 0 || len(rep.Started) != 3 {
		t.Fatalf("restore: %+v, %v", rep, err)
	}
	if !slices.Contains(datas, "svc-data") {
		t.Fatalf("data not kept: %q", datas)
	}
	if _, err := e2.k.Process(pid("kid:p:test")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a spawned child was restored: %v", err)
	}
	in, _ := e2.k.Process(pid("client:p:test"))
	if in.OnExit.Kind != OnExitRestart {
		t.Fatalf("on_exit not kept: %v", in.OnExit)
	}
	caps, _ := e2.k.CapabilitiesOf(pid("client:p:test"))
	if !slices.ContainsFunc(caps, func(c SignedCapability) bool { return c.Issuer.Process == pid("svc:p:test") }) {
		t.Fatalf("grant lost across restart: %+v", caps)
	}
	// And it works: client may message the private svc through the operator's eyes.
	if _, err := e2.k.Send(context.Background(), &Request{Target: addr("our@svc:p:test"), Body: []byte("x"), ExpectsResponse: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Revocation persists too.
	if err := e2.k.Revoke(Capability{Issuer: addr("our@svc:p:test"), Params: MessagingParams}); err != nil {
		t.Fatal(err)
	}
	e2.k.Close(context.Background())
	e3 := newEnv(t, withKeys(keys), withStore(store))
	if _, err := e3.k.Restore(func(ProcessId, []byte) (Process, error) {
		return ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) }), nil
	}); err != nil {
		t.Fatal(err)
	}
	caps, _ = e3.k.CapabilitiesOf(pid("client:p:test"))
	if slices.ContainsFunc(caps, func(c SignedCapability) bool { return c.Issuer.Process == pid("svc:p:test") }) {
		t.Fatalf("revoked grant came back: %+v", caps)
	}
}

func TestRestoreBadRecords(t *testing.T) {
	store := newMemStore()
	store.table["junk:p:test"] = []byte("{not json")
	store.table["mismatch:p:test"] = []byte(`{"v":1,"id":"other:p:test","on_exit":"none"}`)
	store.table["future:p:test"] = []byte(`{"v":99,"id":"future:p:test","on_exit":"none"}`)
	store.table["unknown:p:test"] = []byte(`{"v":1,"id":"unknown:p:test","on_exit":"none","extra":1}`)
	store.table["badexit:p:test"] = []byte(`{"v":1,"id":"badexit:p:test","on_exit":"sometimes"}`)
	store.table["ok:p:test"] = []byte(`{"v":1,"id":"ok:p:test","on_exit":"none"}`)
	store.table["noproc:p:test"] = []byte(`{"v":1,"id":"noproc:p:test","on_exit":"none"}`)
	e := newEnv(t, withStore(store))
	rep, err := e.k.Restore(func(id ProcessId, _ []byte) (Process, error) {
		if id.Name == "noproc" {
			return nil, errors.New("module missing")
		}
		return ProcessFunc(func(ctx context.Context, h *Handle) error { return echo(h) }), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Started) != 1 || rep.Started[0] != pid("ok:p:test") || len(rep.Failed) != 6 {
		t.Fatalf("report %+v", rep)
	}
	for k, err := range rep.Failed {
		t.Logf("%s: %v", k, err)
	}
	if _, ok := store.table["junk:p:test"]; !ok {
		t.Fatal("a record that failed to restore was deleted")
	}
}
