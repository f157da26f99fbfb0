//go:build wasip1

// Command probe exercises the weft SDK through a real node for the
// end-to-end tests: each request's body names a check, and the answer is
// its result (or "FAIL: why").
package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Serve(handle) }

func main() {}

const echo = "our@echo:echo:examples"

func handle(msg *weft.Message) error {
	if d, ok := fanned[msg.ID]; ok && !msg.IsRequest() {
		delete(fanned, msg.ID)
		return fanIn(d, msg)
	}
	if !msg.IsRequest() {
		return fmt.Errorf("probe: unexpected %s", msg.Kind)
	}
	cmd, arg, _ := strings.Cut(string(msg.Body), " ")
	var out string
	var err error
	switch cmd {
	case "sink": // never answered: the sender times out
		return nil
	case "self":
		out = weft.Self()
	case "blob":
		out, err = blob(msg)
	case "state":
		out, err = state()
	case "call":
		out, err = call(arg)
	case "call-missing":
		out, err = callMissing()
	case "call-timeout":
		out, err = callTimeout(arg)
	case "async":
		return async(msg, arg)
	case "caps":
		out, err = caps()
	case "drop":
		out, err = drop(arg)
	case "spawn-bad":
		_, err = weft.Spawn(weft.SpawnSpec{WasmPath: "/nope.wasm"})
		if errors.Is(err, weft.ErrNotFound) {
			out, err = "not found", nil
		} else {
			err = fmt.Errorf("spawn of a missing module: %v", err)
		}
	case "respond-twice":
		if err := msg.Respond(weft.Response{Body: []byte("first")}); err != nil {
			return err
		}
		if err := msg.Respond(weft.Response{Body: []byte("second")}); !errors.Is(err, weft.ErrNoRequest) {
			weft.Logf(weft.LevelError, "probe: second respond = %v", err)
		}
		return nil
	case "fanout":
		return fanOut(msg, arg)
	case "exit":
		return weft.ErrStopped // ends the loop: a clean exit
	default:
		err = fmt.Errorf("unknown check %q", cmd)
	}
	if err != nil {
		out = "FAIL: " + err.Error()
	}
	return msg.Respond(weft.Response{Body: []byte(out)})
}

func blob(msg *weft.Message) (string, error) {
	b, err := msg.Blob()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %d %s", b.Mime, msg.BlobLen, b.Bytes), nil
}

func state() (string, error) {
	if _, err := weft.GetState(); !errors.Is(err, weft.ErrNoState) {
		return "", fmt.Errorf("first GetState = %v, want ErrNoState", err)
	}
	big := strings.Repeat("s", 5000) // more than the SDK's scratch buffer
	if err := weft.SetState([]byte(big)); err != nil {
		return "", err
	}
	got, err := weft.GetState()
	if err != nil || string(got) != big {
		return "", fmt.Errorf("GetState after SetState = %d bytes, %v", len(got), err)
	}
	if err := weft.ClearState(); err != nil {
		return "", err
	}
	if _, err := weft.GetState(); !errors.Is(err, weft.ErrNoState) {
		return "", fmt.Errorf("GetState after ClearState = %v", err)
	}
	return "ok", nil
}

// call asks echo synchronously, with a blob echo's answer carries back
// (a response that inherits takes the request's blob; echo's does not,
// so the answer has none).
func call(arg string) (string, error) {
	ans, err := weft.Request(echo).Body([]byte(arg)).Expects(5 * time.Second).SendAndAwait()
	if err != nil {
		return "", err
	}
	if ans.Kind != weft.KindResponse {
		return "", fmt.Errorf("answer is a %s", ans.Kind)
	}
	return ans.Source + " " + string(ans.Body), nil
}

func callMissing() (string, error) {
	_, err := weft.Request("missing:echo:examples").Expects(time.Second).SendAndAwait()
	var se *weft.SendError
	if !errors.As(err, &se) || !errors.Is(err, weft.ErrNoSuchProcess) {
		return "", fmt.Errorf("SendAndAwait to a missing process = %v", err)
	}
	return se.Kind.String(), nil
}

// callTimeout asks target (a probe that never answers "sink") and waits
// 100 ms.
func callTimeout(target string) (string, error) {
	_, err := weft.Request(target).Body([]byte("sink")).Context([]byte("ctx-1")).Expects(100 * time.Millisecond).SendAndAwait()
	var se *weft.SendError
	if !errors.As(err, &se) || !errors.Is(err, weft.ErrTimeout) {
		return "", fmt.Errorf("SendAndAwait to a sink = %v", err)
	}
	return fmt.Sprintf("%s id>0:%v ctx=%s", se.Kind, se.ID > 0, se.Context), nil
}

// async sends to echo without waiting, takes the answer through Await
// (with its context), and then answers msg: the request being handled
// comes back with the answer.
func async(msg *weft.Message, arg string) error {
	id, err := weft.Request(echo).Body([]byte(arg)).Context([]byte("ctx-" + arg)).Expects(5 * time.Second).Send()
	if err != nil {
		return msg.Respond(weft.Response{Body: []byte("FAIL: " + err.Error())})
	}
	ans, err := weft.Await()
	if err != nil {
		return err
	}
	out := fmt.Sprintf("%s id-match:%v ctx=%s body=%s", ans.Kind, ans.ID == id, ans.Context, ans.Body)
	return msg.Respond(weft.Response{Body: []byte(out)})
}

func caps() (string, error) {
	cs, err := weft.Capabilities()
	if err != nil {
		return "", err
	}
	var s []string
	for _, c := range cs {
		s = append(s, c.Issuer+" "+c.Params)
	}
	return strings.Join(s, "\n"), nil
}

// drop gives up the messaging capability of the process arg, then tries
// to message it.
func drop(arg string) (string, error) {
	if err := weft.Drop(weft.Messaging(arg)); err != nil {
		return "", err
	}
	_, err := weft.Request(arg).Body([]byte("sink")).Send()
	if !errors.Is(err, weft.ErrNoCapability) {
		return "", fmt.Errorf("send after Drop = %v, want no_capability", err)
	}
	return "dropped", nil
}

// fanned holds the requests fanOut deferred, by the id of the request it
// sent for each.
var fanned = map[uint64]weft.Deferred{}

// fanOut defers msg and asks the process arg ("TARGET BODY") on its
// behalf; fanIn answers msg when that answer comes back, while the probe
// handles other requests.
func fanOut(msg *weft.Message, arg string) error {
	target, body, _ := strings.Cut(arg, " ")
	d, err := msg.Defer()
	if err != nil {
		return msg.Respond(weft.Response{Body: []byte("FAIL: defer: " + err.Error())})
	}
	if err := msg.Respond(weft.Response{Body: []byte("FAIL: respond after defer")}); !errors.Is(err, weft.ErrNoRequest) {
		weft.Logf(weft.LevelError, "probe: respond after defer = %v", err)
	}
	id, err := weft.Request(target).Body([]byte(body)).Expects(10 * time.Second).Send()
	if err != nil {
		return d.Respond(weft.Response{Body: []byte("FAIL: send: " + err.Error())})
	}
	fanned[id] = d
	return nil
}

func fanIn(d weft.Deferred, ans *weft.Message) error {
	out := "fanned in: " + string(ans.Body)
	if ans.SendError != nil {
		out = "FAIL: " + ans.SendError.Error()
	}
	if err := d.Respond(weft.Response{Body: []byte(out)}); err != nil {
		return err
	}
	if err := d.Respond(weft.Response{Body: []byte("twice")}); !errors.Is(err, weft.ErrNoRequest) {
		weft.Logf(weft.LevelError, "probe: second deferred respond = %v", err)
	}
	return nil
}
