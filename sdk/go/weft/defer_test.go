//go:build !wasip1

package weft

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
)

// A deferred request is answered later, while another is handled, with
// the response encoded as Respond encodes one; the request itself can no
// longer be answered or deferred, and its Deferred answers once.
func TestDefer(t *testing.T) {
	f := newFake(t)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "a", true), request(2, "node1@b:pkg:pub", "b", true)}
	install(t, f)

	a, _ := Await()
	d, err := a.Defer()
	if err != nil {
		t.Fatal(err)
	}
	if d.Request() != a {
		t.Fatalf("Request() = %p, want the deferred message %p", d.Request(), a)
	}
	_, again := a.Defer()
	for name, err := range map[string]error{"Respond": a.Respond(Response{}), "a second Defer": again} {
		if !errors.Is(err, ErrNoRequest) || !strings.Contains(err.Error(), "was deferred") {
			t.Errorf("%s after Defer = %v, want ErrNoRequest saying it was deferred", name, err)
		}
	}
	if len(f.answers) != 0 || f.lastToken != 1 {
		t.Fatalf("refused calls reached the node: %d answers, %d defers", len(f.answers), f.lastToken)
	}

	b, _ := Await()
	if err := d.Respond(Response{Body: []byte("for a"), Metadata: "m", Inherit: true,
		Capabilities: []Capability{Messaging("me:pkg:pub")}, Blob: &Blob{Mime: "x/y", Bytes: []byte("z")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Respond(Response{Body: []byte("for b")}); err != nil {
		t.Fatal(err)
	}
	if len(f.later) != 1 || len(f.answers) != 1 {
		t.Fatalf("%d deferred answers, %d answers; want 1 and 1", len(f.later), len(f.answers))
	}
	l := f.later[0]
	if l.token != d.token || string(l.resp.Body) != "for a" || l.resp.Metadata != "m" || !l.resp.Inherit ||
		l.resp.Blob == nil || string(l.resp.Blob.Bytes) != "z" || len(l.resp.Capabilities) != 1 ||
		l.resp.Capabilities[0] != (abi.Capability{Issuer: "our@me:pkg:pub", Params: `"messaging"`}) {
		t.Fatalf("deferred answer = %+v", l)
	}
	if string(f.answers[0].Body) != "for b" {
		t.Fatalf("b answered with %q", f.answers[0].Body)
	}

	err = d.Respond(Response{Body: []byte("again")})
	var e *Error
	if !errors.As(err, &e) || e.Code != abi.ENOREQUEST || e.Op != "respond_deferred" || e.Detail != "no such token" {
		t.Fatalf("a second Respond = %#v, want the node's WEFT_ENOREQUEST", err)
	}
	if err := (Deferred{}).Respond(Response{}); !errors.Is(err, ErrNoRequest) || len(f.later) != 1 {
		t.Fatalf("the zero Deferred's Respond = %v (%d answers sent), want ErrNoRequest without calling the node", err, len(f.later))
	}
}

// Defer refuses what is not the request being handled before calling
// the node, and passes on the node's refusal, after which the request is
// still the one to answer.
func TestDeferRefused(t *testing.T) {
	f := newFake(t)
	install(t, f)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "a", true)}
	a, _ := Await()
	id, err := Request("other:pkg:pub").Expects(time.Second).Send()
	if err != nil {
		t.Fatal(err)
	}
	f.inbox = []fakeMsg{request(2, "node1@b:pkg:pub", "b", true), response(id, "node1@other:pkg:pub", "r")}
	if _, err := Await(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Defer(); !errors.Is(err, ErrNoRequest) || !strings.Contains(err.Error(), "not the one being handled") {
		t.Errorf("Defer of a request no longer handled = %v", err)
	}
	r, _ := Await()
	if _, err := r.Defer(); !errors.Is(err, ErrNoRequest) || !strings.Contains(err.Error(), "a response cannot be deferred") {
		t.Errorf("Defer of a response = %v", err)
	}
	if f.lastToken != 0 {
		t.Fatalf("%d refused defers reached the node", f.lastToken)
	}

	// The answer brought a back: the node refuses past its bound.
	f.deferRC = int64(abi.ELIMIT)
	if _, err := a.Defer(); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "refused by the fake") {
		t.Fatalf("Defer the node refuses = %v, want ErrLimit with the node's sentence", err)
	}
	if err := a.Respond(Response{Body: []byte("now")}); err != nil {
		t.Fatalf("Respond after a refused Defer = %v", err)
	}
}
