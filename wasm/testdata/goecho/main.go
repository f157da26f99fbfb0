//go:build wasip1

// goecho is a minimal weft guest in Go: it echoes every request's body,
// and on "call ADDR N" sends N requests to ADDR with send_and_await and
// answers with the last response's body.
package main

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/weftos/weft/abi"
)

//go:wasmimport weft await
func await() int32

//go:wasmimport weft message_read
func messageRead(p unsafe.Pointer, n int32) int32

//go:wasmimport weft respond
func respond(p unsafe.Pointer, n int32) int32

//go:wasmimport weft send_and_await
func sendAndAwait(p unsafe.Pointer, n int32) int32

//go:wasmexport weft_abi_v1
func weftABIv1() {}

var (
	in  = make([]byte, 64<<10)
	out = make([]byte, 0, 64<<10)
	req = make([]byte, 0, 4096)
)

func read(n int32) []byte {
	if int(n) > len(in) {
		in = make([]byte, n)
	}
	messageRead(unsafe.Pointer(&in[0]), n)
	return in[:n]
}

func reply(body []byte) {
	out = abi.AppendResponse(out[:0], &abi.Response{Body: body})
	respond(unsafe.Pointer(&out[0]), int32(len(out)))
}

//go:wasmexport init
func weftInit() int32 {
	for {
		n := await()
		if n == abi.ESTOPPED {
			return 0
		}
		if n < 0 {
			return 10
		}
		m, err := abi.DecodeMessage(read(n))
		if err != nil {
			return 11
		}
		if m.Kind != abi.KindRequest || !m.WantsResponse {
			continue
		}
		if rest, ok := strings.CutPrefix(string(m.Body), "call "); ok {
			target, count, _ := strings.Cut(rest, " ")
			k, _ := strconv.Atoi(count)
			req = abi.AppendRequest(req[:0], &abi.Request{ExpectsResponse: 5e9, Target: target, Body: []byte("hello")})
			var last []byte
			for i := 0; i < k; i++ {
				r := sendAndAwait(unsafe.Pointer(&req[0]), int32(len(req)))
				if r < 0 {
					last = []byte("call failed: " + abi.ErrorName(r))
					break
				}
				a, err := abi.DecodeMessage(read(r))
				if err != nil {
					last = []byte("bad answer")
					break
				}
				last = a.Body
			}
			reply(append([]byte(nil), last...))
			continue
		}
		reply(m.Body)
	}
}

func main() {}
