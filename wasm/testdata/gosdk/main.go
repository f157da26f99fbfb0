//go:build wasip1

// gosdk is goecho written with the Go SDK, as an app author would: it
// echoes every request's body, and on "call ADDR N" sends N requests to
// ADDR with SendAndAwait and answers with the last response's body
// (BenchmarkRoundTrip/go-sdk).
package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Serve(handle) }

func handle(msg *weft.Message) error {
	if !msg.IsRequest() || !msg.WantsResponse {
		return nil
	}
	rest, ok := strings.CutPrefix(string(msg.Body), "call ")
	if !ok {
		return msg.Respond(weft.Response{Body: msg.Body})
	}
	target, count, _ := strings.Cut(rest, " ")
	k, _ := strconv.Atoi(count)
	hello := []byte("hello")
	var last []byte
	for i := 0; i < k; i++ {
		a, err := weft.Request(target).Body(hello).Expects(5 * time.Second).SendAndAwait()
		if err != nil {
			last = []byte("call failed: " + err.Error())
			break
		}
		last = a.Body
	}
	return msg.Respond(weft.Response{Body: last})
}

func main() {}
