// Package chatmsg owns what the chat example (chat:chat:examples) reads
// and writes: the requests it takes, from this node and from other
// nodes, the lines its history keeps and the keys it keeps them under.
// It is apart from the process so that it builds, is tested and is
// fuzzed on the host as well as in the guest.
//
// A request's body is one JSON object:
//
//	{"to":"NODE","text":"hi"}         Send: deliver the line to NODE's chat (this node only)
//	{"text":"hi"}                     Deliver: a line for this chat's history (any node)
//	{"history":true}                  History: the last 100 lines (this node only)
//	{"history":true,"last":N}         History: the last N lines, 1 ≤ N ≤ MaxHistory
//
// NODE is a node id or an alias this node knows (or "our"). Unknown
// fields, trailing data and anything else are refused with an error that
// says what is wrong.
package chatmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Limits.
const (
	// MaxText bounds a line's text, in bytes.
	MaxText = 4096
	// MaxHistory bounds the lines a chat keeps: past it, the oldest goes.
	MaxHistory = 1000
	// DefaultLast is how many lines History answers when it is not told.
	DefaultLast = 100
	// maxNode bounds a node id or alias, as the kernel does.
	maxNode = 253
)

// Process is the chat process's id; a line to NODE goes to
// NODE@chat:chat:examples.
const Process = "chat:chat:examples"

// Op is what a request asks.
type Op int

// Ops.
const (
	Send    Op = iota + 1 // send a line to another node's chat
	Deliver               // keep a line that came from a chat
	History               // answer the last lines kept
)

// Request is a parsed request.
type Request struct {
	Op   Op
	To   string // Send: a node id or an alias
	Text string // Send, Deliver
	Last int    // History: how many lines, newest last
}

// Target is the address of the chat on node to.
func Target(to string) string { return to + "@" + Process }

// ErrNotHere is wrapped by Parse's refusal of a Send or History request
// that came from another node: only this node's processes may make the
// chat send lines or read its history.
var ErrNotHere = errors.New("only a process of this node may ask that")

// wire is a request body as JSON.
type wire struct {
	To      *string `json:"to"`
	Text    *string `json:"text"`
	History *bool   `json:"history"`
	Last    *int    `json:"last"`
}

// Parse reads a request's body. local says the request came from a
// process of this node; Send and History need it.
func Parse(body []byte, local bool) (Request, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Request{}, fmt.Errorf("bad request: %v (want a JSON object: %s)", err, usage)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, errors.New("bad request: trailing data after the JSON object")
	}
	switch {
	case w.History != nil:
		if !*w.History || w.To != nil || w.Text != nil {
			return Request{}, fmt.Errorf(`bad request: "history" is true and alone, or with "last" (%s)`, usage)
		}
		last := DefaultLast
		if w.Last != nil {
			last = *w.Last
		}
		if last < 1 || last > MaxHistory {
			return Request{}, fmt.Errorf(`bad request: "last" is %d, want 1 to %d`, last, MaxHistory)
		}
		if !local {
			return Request{}, fmt.Errorf("history: %w", ErrNotHere)
		}
		return Request{Op: History, Last: last}, nil
	case w.Last != nil:
		return Request{}, errors.New(`bad request: "last" goes with "history"`)
	case w.Text == nil:
		return Request{}, fmt.Errorf(`bad request: no "text" (%s)`, usage)
	}
	if err := checkText(*w.Text); err != nil {
		return Request{}, err
	}
	if w.To == nil {
		return Request{Op: Deliver, Text: *w.Text}, nil
	}
	if err := checkNode(*w.To); err != nil {
		return Request{}, err
	}
	if !local {
		return Request{}, fmt.Errorf("send: %w", ErrNotHere)
	}
	return Request{Op: Send, To: *w.To, Text: *w.Text}, nil
}

const usage = `{"to":"NODE","text":"…"}, {"text":"…"} or {"history":true}`

// checkText checks a line's text. (It is UTF-8: encoding/json has
// replaced any invalid byte with U+FFFD.)
func checkText(s string) error {
	switch {
	case s == "":
		return errors.New(`bad request: "text" is empty`)
	case len(s) > MaxText:
		return fmt.Errorf(`bad request: "text" is %d bytes, more than %d`, len(s), MaxText)
	}
	return nil
}

// checkNode checks a node id or alias as the kernel does: 1 to 253 of
// [a-z0-9.-].
func checkNode(s string) error {
	if len(s) == 0 || len(s) > maxNode {
		return fmt.Errorf(`bad request: "to" is %d bytes, want a node id or alias of 1 to %d`, len(s), maxNode)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf(`bad request: "to" %s is no node id or alias (1 to %d of [a-z0-9.-])`, strconv.Quote(s), maxNode)
		}
	}
	return nil
}

// LineBody is the body of the request that delivers text to another
// chat: a Deliver request.
func LineBody(text string) []byte {
	b, _ := json.Marshal(struct {
		Text string `json:"text"`
	}{text})
	return b
}

// Entry is a line of the history: received (From set) or sent and
// accepted by the other chat (To set).
type Entry struct {
	From string    `json:"from,omitempty"` // the node it came from
	To   string    `json:"to,omitempty"`   // the node it went to, as the sender named it
	Text string    `json:"text"`
	At   time.Time `json:"at"` // when this chat kept it
}

// Key is the history key of a line kept at unix time ns: the decimal
// number, zero-padded to 20 digits, so that key order is time order.
func Key(ns int64) []byte { return fmt.Appendf(nil, "%020d", ns) }

// NextKey returns the time a line kept at now is keyed by, given the
// newest key so far (last): now, or last+1 when the clock has not moved
// past last, so that keys never collide.
func NextKey(last int64, now time.Time) int64 {
	ns := now.UnixNano()
	if ns <= last {
		ns = last + 1
	}
	return ns
}

// ParseKey reads a key Key made.
func ParseKey(k []byte) (int64, error) {
	if len(k) != 20 {
		return 0, fmt.Errorf("history key %q: want 20 digits", k)
	}
	ns, err := strconv.ParseInt(string(k), 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("history key %q: want 20 digits", k)
	}
	return ns, nil
}

// OK is the answer to a line accepted.
var OK = []byte(`{"ok":true}`)

// Accepted reports whether answer, another chat's answer to a line, says
// it kept the line.
func Accepted(answer []byte) bool {
	var a struct {
		OK bool `json:"ok"`
	}
	return json.Unmarshal(answer, &a) == nil && a.OK
}

// ErrorBody is the answer to a request that failed: {"error":"…"}, with
// "kind" the SendError kind when a send failed (timeout, offline, …).
func ErrorBody(kind string, err error) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Kind  string `json:"kind,omitempty"`
	}{err.Error(), kind})
	return b
}
