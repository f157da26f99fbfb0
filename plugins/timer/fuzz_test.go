package timer_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/timer"
)

// FuzzRequest feeds request bodies to a running timer driver, as a
// requester would send them: it never panics, every answer is a JSON
// object, a refusal says what was wrong, and the setter never holds more
// timers than its bound.
//
// A set that is held until it fires waits out the request's few
// milliseconds (the clock never moves), hence the slow directive.
//
//weft:fuzzslow 20
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"set","in":"2s","data":{"note":"tea"}}`,
		`{"op":"set","id":"a","at":"2026-12-03T18:00:00Z","ack":true}`,
		`{"op":"set","id":"a","in":"1h","ack":true}`,
		`{"op":"cancel","id":"a"}`,
		`{"op":"list"}`,
		`{"op":"list","id":"x"}`,
		`{"op":"set","in":"-5s","ack":true}`,
		`{"op":"set","id":"` + "\x00" + `","in":"1s","ack":true}`,
		`{"op":"set","in":"1s","at":"2026-12-03T18:00:00Z","ack":true}`,
		`{"op":"brew"}`, `{}`, `[]`, `null`, `{"op":"list"} {}`, ``,
	} {
		f.Add([]byte(s))
	}
	const bound = 8
	h := driver.NewHarness(timer.New(timer.Options{Clock: newClock()}), driver.HarnessOptions{Config: json.RawMessage(`{"max_timers_per_setter":8}`)})
	if err := h.Start(f.Context()); err != nil {
		f.Fatal(err)
	}
	defer h.Stop()
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := h.Request(t.Context(), driver.HarnessRequest{Source: alice, Body: body, Timeout: 5 * time.Millisecond})
		if err == nil && resp != nil {
			checkAnswer(t, body, resp)
		} // else a set held until its requester's timeout is near
		list, err := h.Request(t.Context(), driver.HarnessRequest{Source: alice, Body: []byte(`{"op":"list"}`), Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var l struct{ Timers []json.RawMessage }
		if err := json.Unmarshal(list.Body, &l); err != nil {
			t.Fatalf("list: %q: %v", list.Body, err)
		}
		if len(l.Timers) > bound {
			t.Fatalf("%q: the setter holds %d timers, bound %d", body, len(l.Timers), bound)
		}
	})
}

func checkAnswer(t *testing.T, body []byte, resp *driver.Response) {
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatalf("%q: answer %q is not a JSON object: %v", body, resp.Body, err)
	}
	if e, ok := m["error"]; ok {
		if s, _ := e.(string); s == "" || len(s) > 8192 {
			t.Fatalf("%q: refusal %q", body, e)
		}
	}
}
