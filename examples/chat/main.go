//go:build wasip1

// Command chat is the process chat:chat:examples: it sends lines to the
// chat of another node and keeps the lines it gets, with the node each
// came from and when, in its package's database "history" (key: the
// time it kept the line, see chatmsg.Key; value: a chatmsg.Entry as
// JSON; at most chatmsg.MaxHistory lines, the oldest going first).
// Requests are JSON (package chatmsg has the rules):
//
//	{"to":"NODE","text":"hi"}   → the answer of NODE's chat, {"ok":true} once it kept the
//	                              line (which this chat then keeps as sent), or
//	                              {"error":"…","kind":"offline"} when the send failed
//	{"text":"hi"}               → {"ok":true}: a line, kept with the sender's node
//	{"history":true[,"last":N]} → [{"from"|"to":NODE,"text":…,"at":…}, …], oldest first
//
// NODE is a node id or an alias of this node's (weft peers alias). Only
// processes of this node may send lines or read the history; any node's
// processes with the network capability may deliver a line, since the
// process is public. Sending waits for the other chat's answer without
// holding up the lines that arrive meanwhile. Anything wrong is answered
// {"error":"…"}; the process goes on.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftos/weft/examples/chat/chatmsg"
	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Run(run) }

func main() {}

// sendTimeout is how long a line waits for the other chat's answer: more
// than a node's dial deadline (10 s by default), so that a node that
// cannot be reached fails offline rather than timeout.
const sendTimeout = 15 * time.Second

var (
	history *weft.Database
	node    string // this node's id
	lines   int    // lines in history
	lastKey int64  // the newest key in history
	// sending holds, by the id of the request that carries it, each line
	// sent that awaits the other chat's answer.
	sending = map[uint64]sent{}
)

// sent is a line on its way to another chat.
type sent struct {
	d    weft.Deferred // the request to answer; zero when it wants no answer
	to   string
	text string
}

func run() error {
	var err error
	if history, err = weft.OpenKV("history"); err != nil {
		return fmt.Errorf("chat: open database history: %w", err)
	}
	node = nodeOf(weft.Self())
	if node == "" {
		return errors.New("chat: the node did not say which node this is")
	}
	sc := history.Scan(nil)
	for k := range sc.All() {
		lines++
		if ns, err := chatmsg.ParseKey(k); err == nil {
			lastKey = max(lastKey, ns)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("chat: read history: %w", err)
	}
	return weft.Loop(handle)
}

// nodeOf is the node of an address node@name:package:publisher.
func nodeOf(addr string) string {
	n, _, ok := strings.Cut(addr, "@")
	if !ok {
		return ""
	}
	return n
}

func handle(msg *weft.Message) error {
	if !msg.IsRequest() {
		return answered(msg)
	}
	r, err := chatmsg.Parse(msg.Body, nodeOf(msg.Source) == node)
	if err != nil {
		return respond(msg, chatmsg.ErrorBody("", err))
	}
	switch r.Op {
	case chatmsg.Send:
		return send(msg, r)
	case chatmsg.Deliver:
		if err := keep(chatmsg.Entry{From: nodeOf(msg.Source), Text: r.Text}); err != nil {
			respond(msg, chatmsg.ErrorBody("", err))
			return err
		}
		return respond(msg, chatmsg.OK)
	case chatmsg.History:
		b, err := last(r.Last)
		if err != nil {
			respond(msg, chatmsg.ErrorBody("", err))
			return err
		}
		return respond(msg, b)
	}
	return nil
}

// respond answers msg with body when its sender waits for an answer.
func respond(msg *weft.Message, body []byte) error {
	if !msg.WantsResponse {
		return nil
	}
	return msg.Respond(weft.Response{Body: body})
}

// send sends r's line to the chat of node r.To and takes msg off the
// process's hands; answered answers it when the other chat does.
func send(msg *weft.Message, r chatmsg.Request) error {
	var d weft.Deferred
	if msg.WantsResponse {
		var err error
		if d, err = msg.Defer(); err != nil {
			return respond(msg, chatmsg.ErrorBody("", fmt.Errorf("send: %w", err)))
		}
	}
	id, err := weft.Request(chatmsg.Target(r.To)).Body(chatmsg.LineBody(r.Text)).Expects(sendTimeout).Send()
	if err != nil {
		return answer(d, failure(err))
	}
	sending[id] = sent{d: d, to: r.To, text: r.Text}
	return nil
}

// answered handles the answer to a line sent: it keeps the line once
// the other chat did, and hands the answer to whoever asked for the send.
func answered(msg *weft.Message) error {
	s, ok := sending[msg.ID]
	if !ok {
		return nil
	}
	delete(sending, msg.ID)
	if msg.SendError != nil {
		return answer(s.d, failure(msg.SendError))
	}
	if chatmsg.Accepted(msg.Body) {
		if err := keep(chatmsg.Entry{To: s.to, Text: s.text}); err != nil {
			answer(s.d, chatmsg.ErrorBody("", fmt.Errorf("delivered, but not kept here: %w", err)))
			return err
		}
	}
	return answer(s.d, msg.Body)
}

// answer answers a deferred request, if there is one.
func answer(d weft.Deferred, body []byte) error {
	if d.Request() == nil {
		return nil
	}
	return d.Respond(weft.Response{Body: body})
}

// failure is the answer to a send that failed with err.
func failure(err error) []byte {
	var se *weft.SendError
	if errors.As(err, &se) {
		if se.Detail != "" {
			// The node's sentence names the target and the kind already.
			err = errors.New(se.Detail)
		}
		return chatmsg.ErrorBody(se.Kind.String(), err)
	}
	return chatmsg.ErrorBody("", err)
}

// keep adds e to the history, stamped now, dropping the oldest line when
// the history is full (in the same transaction).
func keep(e chatmsg.Entry) error {
	now := time.Now()
	ns := chatmsg.NextKey(lastKey, now)
	e.At = time.Unix(0, ns).UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tx := history.Tx().Set(chatmsg.Key(ns), v)
	drop := lines >= chatmsg.MaxHistory
	if drop {
		oldest, _, err := history.ScanPage(nil, nil, 1)
		if err != nil {
			return fmt.Errorf("keep a line: %w", err)
		}
		if len(oldest) == 1 {
			tx.Delete(oldest[0].Key)
		} else {
			drop = false
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keep a line: %w", err)
	}
	lastKey = ns
	if !drop {
		lines++
	}
	return nil
}

// last answers the newest n lines of the history, oldest first.
func last(n int) ([]byte, error) {
	ring := make([]json.RawMessage, 0, min(n, lines))
	skip := max(lines-n, 0) // lines is exact, so the scan skips the older ones
	i := 0
	sc := history.Scan(nil)
	for _, v := range sc.All() {
		if i++; i <= skip {
			continue
		}
		ring = append(ring, json.RawMessage(v))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if len(ring) > n {
		ring = ring[len(ring)-n:]
	}
	return json.Marshal(ring)
}
