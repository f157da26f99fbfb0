//go:build wasip1

// Command echo is the process echo:echo:examples: it answers every
// request with the body it got.
package main

import "github.com/weftos/weft/sdk/go/weft"

func init() { weft.Serve(handle) }

func handle(msg *weft.Message) error {
	if !msg.IsRequest() || !msg.WantsResponse {
		return nil
	}
	return msg.Respond(weft.Response{Body: msg.Body})
}

func main() {}
