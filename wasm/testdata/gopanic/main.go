//go:build wasip1

// gopanic is a weft guest in Go that dies of a real, unrecovered Go panic
// when asked to: on a request whose body is "panic" it panics. On
// "send N TARGET" it sends TARGET a request with an N-byte body (expecting
// no response) and answers with what send returned: "id" on success, or
// the error code's name and last_error. Any other request it echoes.
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

//go:wasmimport weft send
func send(p unsafe.Pointer, n int32) int64

//go:wasmimport weft last_error
func lastError(p unsafe.Pointer, n int32) int32

//go:wasmexport weft_abi_v1
func weftABIv1() {}

var (
	in  = make([]byte, 64<<10)
	out = make([]byte, 0, 64<<10)
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

// sendBody sends target a request with an n-byte body and reports the
// result.
func sendBody(n int, target string) string {
	req := abi.AppendRequest(nil, &abi.Request{Target: target, Body: make([]byte, n)})
	r := send(unsafe.Pointer(&req[0]), int32(len(req)))
	if r >= 0 {
		return "id"
	}
	buf := make([]byte, 1024)
	l := lastError(unsafe.Pointer(&buf[0]), int32(len(buf)))
	if l < 0 {
		l = 0
	}
	return abi.ErrorName(int32(r)) + " " + string(buf[:l])
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
		body := string(m.Body)
		switch {
		case body == "panic":
			// A real, unrecovered panic: the Go runtime prints it to
			// stderr and exits the instance.
			panic("gopanic: asked to panic")
		case strings.HasPrefix(body, "send "):
			size, target, _ := strings.Cut(strings.TrimPrefix(body, "send "), " ")
			k, _ := strconv.Atoi(size)
			reply([]byte(sendBody(k, target)))
		default:
			reply(append([]byte(nil), m.Body...))
		}
	}
}

func main() {}
