package chatmsg

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	long := strings.Repeat("x", MaxText)
	for _, tc := range []struct {
		body  string
		local bool
		want  Request
	}{
		{`{"to":"k51abc","text":"hi"}`, true, Request{Op: Send, To: "k51abc", Text: "hi"}},
		{`{"to":"alice","text":"` + long + `"}`, true, Request{Op: Send, To: "alice", Text: long}},
		{` {"text":"hi"} `, false, Request{Op: Deliver, Text: "hi"}},
		{`{"text":"hi"}`, true, Request{Op: Deliver, Text: "hi"}},
		{`{"history":true}`, true, Request{Op: History, Last: DefaultLast}},
		{`{"history":true,"last":1000}`, true, Request{Op: History, Last: 1000}},
	} {
		got, err := Parse([]byte(tc.body), tc.local)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%.40q, %v) = %+v, %v; want %+v", tc.body, tc.local, got, err, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		body  string
		local bool
		want  string
	}{
		{``, true, "bad request: EOF"},
		{`hi`, true, "want a JSON object"},
		{`[1]`, true, "want a JSON object"},
		{`null`, true, `no "text"`},
		{`{}`, true, `no "text"`},
		{`{"text":"hi"} {}`, true, "trailing data"},
		{`{"text":"hi"}x`, true, "trailing data"},
		{`{"text":"hi","from":"k51"}`, true, `unknown field "from"`},
		{`{"text":""}`, true, `"text" is empty`},
		{`{"text":"` + strings.Repeat("x", MaxText+1) + `"}`, true, "4097 bytes, more than 4096"},
		{`{"text":1}`, true, "cannot unmarshal number"},
		{`{"to":"","text":"hi"}`, true, `"to" is 0 bytes`},
		{`{"to":"Alice","text":"hi"}`, true, `"to" "Alice" is no node id or alias`},
		{`{"to":"a@b","text":"hi"}`, true, `is no node id or alias`},
		{`{"to":"` + strings.Repeat("a", 254) + `","text":"hi"}`, true, `"to" is 254 bytes`},
		{`{"to":"alice"}`, true, `no "text"`},
		{`{"to":"alice","text":"hi"}`, false, "send: only a process of this node may ask that"},
		{`{"history":true}`, false, "history: only a process of this node"},
		{`{"history":false}`, true, `"history" is true and alone`},
		{`{"history":true,"text":"hi"}`, true, `"history" is true and alone`},
		{`{"history":true,"last":0}`, true, `"last" is 0, want 1 to 1000`},
		{`{"history":true,"last":1001}`, true, `"last" is 1001`},
		{`{"text":"hi","last":3}`, true, `"last" goes with "history"`},
	} {
		_, err := Parse([]byte(tc.body), tc.local)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q, %v): %v; want an error with %q", tc.body, tc.local, err, tc.want)
		}
	}
	if _, err := Parse([]byte(`{"history":true}`), false); !errors.Is(err, ErrNotHere) {
		t.Errorf("history from another node: %v, want ErrNotHere", err)
	}
}

// TestLineBodyIsDeliver: what a chat sends another is a Deliver request
// there, whatever the text holds.
func TestLineBodyIsDeliver(t *testing.T) {
	for _, text := range []string{"hi", `"}{"to":"x"`, "línea\n\t<>&"} {
		r, err := Parse(LineBody(text), false)
		if err != nil || r != (Request{Op: Deliver, Text: text}) {
			t.Errorf("LineBody(%q) parses as %+v, %v", text, r, err)
		}
	}
}

func TestKeys(t *testing.T) {
	at := time.Date(2026, 12, 4, 6, 0, 0, 5, time.UTC)
	ns := NextKey(0, at)
	if ns != at.UnixNano() {
		t.Fatalf("NextKey(0, at) = %d, want %d", ns, at.UnixNano())
	}
	if again := NextKey(ns, at); again != ns+1 {
		t.Errorf("NextKey on the same instant = %d, want %d", again, ns+1)
	}
	if back := NextKey(ns+10, at); back != ns+11 {
		t.Errorf("NextKey with the clock behind = %d, want %d", back, ns+11)
	}
	k := Key(ns)
	if len(k) != 20 || strings.Trim(string(k), "0123456789") != "" {
		t.Errorf("Key = %q, want 20 digits", k)
	}
	if string(Key(9)) >= string(Key(10)) || string(Key(10)) >= string(Key(ns)) {
		t.Errorf("key order is not time order: %s %s %s", Key(9), Key(10), Key(ns))
	}
	if got, err := ParseKey(k); err != nil || got != ns {
		t.Errorf("ParseKey(%s) = %d, %v", k, got, err)
	}
	for _, bad := range []string{"", "123", "0000000000000000000x", "-0000000000000000001", "99999999999999999999"} {
		if _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

func TestAnswers(t *testing.T) {
	if !Accepted(OK) {
		t.Error("OK is not accepted")
	}
	for _, a := range []string{``, `{"ok":false}`, `{"error":"x"}`, `true`, `[`} {
		if Accepted([]byte(a)) {
			t.Errorf("Accepted(%q)", a)
		}
	}
	var e struct{ Error, Kind string }
	if err := json.Unmarshal(ErrorBody("offline", errors.New(`send "x": offline`)), &e); err != nil || e.Error != `send "x": offline` || e.Kind != "offline" {
		t.Errorf("ErrorBody: %+v, %v", e, err)
	}
	if b := string(ErrorBody("", errors.New("bad"))); b != `{"error":"bad"}` {
		t.Errorf("ErrorBody without a kind = %s", b)
	}
	if Target("alice") != "alice@chat:chat:examples" {
		t.Errorf("Target = %s", Target("alice"))
	}
}

// FuzzParse: any body, from this node or another, parses or is refused
// with an error; what parses is within the limits, and only this node
// may send or read the history.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"to":"k51abc","text":"hi"}`), true)
	f.Add([]byte(`{"text":"hi"}`), false)
	f.Add([]byte(`{"history":true,"last":5}`), true)
	f.Add([]byte(`{"text":"hi"} x`), false)
	f.Fuzz(func(t *testing.T, body []byte, local bool) {
		r, err := Parse(body, local)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error with no text")
			}
			return
		}
		switch r.Op {
		case Send:
			if !local || checkNode(r.To) != nil || checkText(r.Text) != nil {
				t.Fatalf("Parse(%q, %v) = %+v", body, local, r)
			}
		case Deliver:
			if r.To != "" || checkText(r.Text) != nil {
				t.Fatalf("Parse(%q, %v) = %+v", body, local, r)
			}
			if again, err := Parse(LineBody(r.Text), false); err != nil || again != r {
				t.Fatalf("LineBody(%q) parses as %+v, %v", r.Text, again, err)
			}
		case History:
			if !local || r.Last < 1 || r.Last > MaxHistory {
				t.Fatalf("Parse(%q, %v) = %+v", body, local, r)
			}
		default:
			t.Fatalf("Parse(%q, %v) = op %d", body, local, r.Op)
		}
	})
}
