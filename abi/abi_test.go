package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var testCaps = []Capability{
	{Issuer: "our@echo:echo:weft.dev", Params: `"messaging"`},
	{Issuer: "node1@kernel:sys:weft", Params: `{"a":1}`},
}

func sampleMessages() []Message {
	return []Message{
		{Kind: KindRequest, ID: 1, Source: "our@a:b:c", Target: "our@d:e:f"},
		{Kind: KindRequest, WantsResponse: true, Inherit: true, ID: 7, ExpectsResponse: 5e9,
			Source: "n@a:b:c", Target: "n@d:e:f", Body: []byte("hello"), Metadata: "m",
			Capabilities: testCaps, HasBlob: true, BlobMime: "text/plain", BlobLen: 42},
		{Kind: KindResponse, ID: 9, Source: "n@d:e:f", Target: "n@a:b:c", Body: []byte{0, 1, 2},
			Context: []byte("ctx")},
		{Kind: KindError, ErrorKind: 1, ID: 3, Source: "n@a:b:c", Target: "n@x:y:z",
			Context: []byte("c"), ErrorDetail: "no response within 1s"},
	}
}

func sampleRequests() []Request {
	return []Request{
		{Target: "our@a:b:c"},
		{Inherit: true, ExpectsResponse: 1e9, Target: "our@a:b:c", Body: []byte("hello"),
			Metadata: "meta", Context: []byte{9, 9}, Capabilities: testCaps,
			Blob: &Blob{Mime: "application/octet-stream", Bytes: []byte("blob!")}},
		{Target: "n@a:b:c", Blob: &Blob{}},
	}
}

func sampleResponses() []Response {
	return []Response{
		{},
		{Inherit: true, Body: []byte("hello"), Metadata: "m", Capabilities: testCaps[:1],
			Blob: &Blob{Mime: "x/y", Bytes: []byte{1}}},
		{Body: []byte("x"), Blob: &Blob{}},
	}
}

func TestRoundTrip(t *testing.T) {
	for i, m := range sampleMessages() {
		b := AppendMessage(nil, &m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("message %d: got %+v, want %+v", i, got, m)
		}
	}
	for i, q := range sampleRequests() {
		b := AppendRequest(nil, &q)
		got, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, q) {
			t.Errorf("request %d: got %+v, want %+v", i, got, q)
		}
	}
	for i, p := range sampleResponses() {
		b := AppendResponse(nil, &p)
		got, err := DecodeResponse(b)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("response %d: got %+v, want %+v", i, got, p)
		}
	}
	for i, s := range []SpawnSpec{{}, {Name: "kid", WasmPath: "kid.wasm", OnExit: OnExitRestart, Public: true, Capabilities: testCaps}} {
		b := AppendSpawn(nil, &s)
		got, err := DecodeSpawn(b)
		if err != nil {
			t.Fatalf("spawn %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("spawn %d: got %+v, want %+v", i, got, s)
		}
	}
	c, err := DecodeCap(AppendCap(nil, testCaps[1]))
	if err != nil || c != testCaps[1] {
		t.Errorf("cap: got %v, %v", c, err)
	}
	if _, err := DecodeCap(AppendCaps(nil, testCaps[:1])); err == nil {
		t.Error("DecodeCap took a caps encoding (with its count)")
	}
	cs, err := DecodeCaps(AppendCaps(nil, testCaps))
	if err != nil || !reflect.DeepEqual(cs, testCaps) {
		t.Errorf("caps: got %v, %v", cs, err)
	}
}

// TestLayout pins the byte layout of docs/abi.md against a hand-written
// encoding.
func TestLayout(t *testing.T) {
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	le64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	str := func(s string) []byte { return append(le32(uint32(len(s))), s...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	wantReq := cat([]byte{3, 0, 0, 0}, le64(1000), str("our@a:b:c"), str("hi"), str("md"), str("cx"),
		le32(1), str("our@x:y:z"), str(`"messaging"`), str("t/p"), str("bb"))
	gotReq := AppendRequest(nil, &Request{Inherit: true, ExpectsResponse: 1000, Target: "our@a:b:c",
		Body: []byte("hi"), Metadata: "md", Context: []byte("cx"),
		Capabilities: []Capability{{"our@x:y:z", `"messaging"`}}, Blob: &Blob{"t/p", []byte("bb")}})
	if !bytes.Equal(gotReq, wantReq) {
		t.Errorf("request layout:\n got %x\nwant %x", gotReq, wantReq)
	}

	wantMsg := cat([]byte{3, 0, 6, 0}, le64(5), le64(0), str("s"), str("t"), str(""), str(""), str("c"),
		le32(0), str(""), le32(0), str("killed"))
	gotMsg := AppendMessage(nil, &Message{Kind: KindError, ErrorKind: 6, ID: 5, Source: "s", Target: "t",
		Context: []byte("c"), ErrorDetail: "killed"})
	if !bytes.Equal(gotMsg, wantMsg) {
		t.Errorf("message layout:\n got %x\nwant %x", gotMsg, wantMsg)
	}

	wantResp := cat([]byte{0, 0, 0, 0}, str("ok"), str(""), le32(0))
	if got := AppendResponse(nil, &Response{Body: []byte("ok")}); !bytes.Equal(got, wantResp) {
		t.Errorf("response layout:\n got %x\nwant %x", got, wantResp)
	}

	wantSpawn := cat(str("kid"), str("k.wasm"), []byte{1, 1, 0, 0}, le32(0))
	if got := AppendSpawn(nil, &SpawnSpec{Name: "kid", WasmPath: "k.wasm", OnExit: 1, Public: true}); !bytes.Equal(got, wantSpawn) {
		t.Errorf("spawn layout:\n got %x\nwant %x", got, wantSpawn)
	}
}

func TestDecodeErrors(t *testing.T) {
	msg := AppendMessage(nil, &sampleMessages()[1])
	req := AppendRequest(nil, &sampleRequests()[1])
	resp := AppendResponse(nil, &sampleResponses()[1])
	spawn := AppendSpawn(nil, &SpawnSpec{Name: "kid", WasmPath: "k.wasm"})
	set := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	// Offset of the target's length in a request: 4 flag/reserved + 8.
	badUTF8Req := AppendRequest(nil, &Request{Target: "a\xffb"})
	bigLenReq := bytes.Clone(req)
	binary.LittleEndian.PutUint32(bigLenReq[12:], 1<<31)
	bigCaps := AppendRequest(nil, &Request{Target: "t"})
	binary.LittleEndian.PutUint32(bigCaps[len(bigCaps)-4:], 1<<30)

	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
		want   string
	}{
		{"message empty", decMsg, nil, "message: kind: needs 1 bytes, 0 left"},
		{"message kind 0", decMsg, set(msg, 0, 0), "message: kind: unknown kind 0"},
		{"message kind 4", decMsg, set(msg, 0, 4), "message: kind: unknown kind 4"},
		{"message flag bits", decMsg, set(msg, 1, 0x8), "message: flags: unknown bits 0x8"},
		{"message error kind on request", decMsg, set(msg, 2, 1), "message: error kind: must be 0"},
		{"message error kind 8", decMsg, set(set(msg, 0, 3), 2, 8), "message: error kind: error kind 8"},
		{"message error kind 0 on error", decMsg, set(msg, 0, 3), "message: error kind: error kind 0"},
		{"message reserved", decMsg, set(msg, 3, 1), "message: reserved: must be zero"},
		{"message truncated", decMsg, msg[:len(msg)-1], "message: error detail"},
		{"message trailing", decMsg, append(bytes.Clone(msg), 0), "message: 1 trailing bytes"},
		{"message blob without flag", decMsg, set(msg, 1, 0x3), "message: blob mime: blob fields set without the blob flag"},
		{"request empty", decReq, nil, "request: flags"},
		{"request flag bits", decReq, set(req, 0, 0x4), "request: flags: unknown bits 0x4"},
		{"request reserved", decReq, set(req, 2, 1), "request: reserved: must be zero"},
		{"request target length", decReq, bigLenReq, "request: target: length 2147483648 past the end"},
		{"request target utf8", decReq, badUTF8Req, "request: target: not valid UTF-8"},
		{"request caps count", decReq, bigCaps, "request: capabilities: count 1073741824 past the end"},
		{"request missing blob", decReq, set(AppendRequest(nil, &Request{}), 0, 2), "request: blob mime length: needs 4 bytes"},
		{"request trailing", decReq, append(bytes.Clone(req), 1, 2), "request: 2 trailing bytes"},
		{"response flag bits", decResp, set(resp, 0, 0x80), "response: flags: unknown bits 0x80"},
		{"response reserved", decResp, set(resp, 3, 9), "response: reserved: must be zero"},
		{"response truncated", decResp, resp[:5], "response: body length: needs 4 bytes, 1 left"},
		{"response trailing", decResp, append(bytes.Clone(resp), 0), "response: 1 trailing bytes"},
		{"spawn on_exit", decSpawn, set(spawn, 4+3+4+6, 2), "spawn spec: on_exit: unknown policy 2"},
		{"spawn public", decSpawn, set(spawn, 4+3+4+6+1, 2), "spawn spec: public: must be 0 or 1"},
		{"spawn reserved", decSpawn, set(spawn, 4+3+4+6+3, 1), "spawn spec: reserved: must be zero"},
		{"caps trailing", func(b []byte) error { _, err := DecodeCaps(b); return err }, append(AppendCaps(nil, testCaps), 0), "caps: 1 trailing bytes"},
		{"caps issuer utf8", func(b []byte) error { _, err := DecodeCaps(b); return err },
			AppendCaps(nil, []Capability{{"\xc0", "x"}}), "caps: capabilities issuer: not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.decode(tc.in)
			if err == nil {
				t.Fatalf("decoded %x without error", tc.in)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func decMsg(b []byte) error   { _, err := DecodeMessage(b); return err }
func decReq(b []byte) error   { _, err := DecodeRequest(b); return err }
func decResp(b []byte) error  { _, err := DecodeResponse(b); return err }
func decSpawn(b []byte) error { _, err := DecodeSpawn(b); return err }

// TestTruncations decodes every prefix of valid encodings: each must fail
// cleanly, never panic.
// Messages without capabilities take the straight-line decoder, which
// gives what the reader gives; others, and every malformed one, go to the
// reader.
func TestDecodeMessageFast(t *testing.T) {
	fast := 0
	for i, m := range sampleMessages() {
		b := AppendMessage(nil, &m)
		var fm Message
		ok := decodeMessageFast(b, &fm)
		if ok != (len(m.Capabilities) == 0) {
			t.Errorf("message %d (%d capabilities): fast path %v", i, len(m.Capabilities), ok)
		}
		if !ok {
			continue
		}
		fast++
		if sm, err := decodeMessage(b); err != nil || !reflect.DeepEqual(fm, sm) {
			t.Errorf("message %d: fast %+v, reader %+v (%v)", i, fm, sm, err)
		}
		for j := range b {
			if decodeMessageFast(b[:j], new(Message)) {
				t.Fatalf("message %d: prefix %d of %d decoded", i, j, len(b))
			}
		}
		if decodeMessageFast(append(b, 0), new(Message)) {
			t.Fatalf("message %d: a trailing byte decoded", i)
		}
	}
	if fast == 0 {
		t.Fatal("no sample message took the fast path")
	}
}

// DecodeMessageInto overwrites every field, and leaves all zero on
// failure.
func TestDecodeMessageInto(t *testing.T) {
	junk := Message{Kind: KindError, ErrorKind: 3, ID: 9, Source: "x", Body: []byte("old"), Capabilities: []Capability{{"a", "b"}}, BlobLen: 4, ErrorDetail: "old"}
	for i, want := range sampleMessages() {
		m := junk
		if err := DecodeMessageInto(AppendMessage(nil, &want), &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("message %d: got %+v, want %+v", i, m, want)
		}
	}
	m := junk
	if err := DecodeMessageInto([]byte{1, 2, 3}, &m); err == nil || !reflect.DeepEqual(m, Message{}) {
		t.Errorf("bad input: %v, left %+v", err, m)
	}
}

func TestTruncations(t *testing.T) {
	for _, m := range sampleMessages() {
		b := AppendMessage(nil, &m)
		for i := range b {
			if _, err := DecodeMessage(b[:i]); err == nil {
				t.Fatalf("message prefix %d of %d decoded", i, len(b))
			}
		}
	}
	for _, q := range sampleRequests() {
		b := AppendRequest(nil, &q)
		for i := range b {
			if _, err := DecodeRequest(b[:i]); err == nil {
				t.Fatalf("request prefix %d of %d decoded", i, len(b))
			}
		}
	}
	for _, p := range sampleResponses() {
		b := AppendResponse(nil, &p)
		for i := range b {
			if _, err := DecodeResponse(b[:i]); err == nil {
				t.Fatalf("response prefix %d of %d decoded", i, len(b))
			}
		}
	}
}

func TestAliasing(t *testing.T) {
	b := AppendRequest(nil, &Request{Target: "t", Body: []byte("body")})
	q, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if &q.Body[0] != &b[4+8+4+1+4] {
		t.Error("Body does not alias the input")
	}
	if cap(q.Body) != len(q.Body) {
		t.Error("Body's capacity reaches past it into the input")
	}
}

func TestErrorName(t *testing.T) {
	for code, want := range map[int32]string{EINVAL: "WEFT_EINVAL", ETOOLARGE: "WEFT_ETOOLARGE", EKILLED: "WEFT_EKILLED", 5: "WEFT_E(5)"} {
		if got := ErrorName(code); got != want {
			t.Errorf("ErrorName(%d) = %q, want %q", code, got, want)
		}
	}
	if SendErrorCode(1) != ETIMEOUT || SendErrorCode(7) != ETOOLARGE {
		t.Error("SendErrorCode does not match the table")
	}
}

func TestDecodeAllocs(t *testing.T) {
	b := AppendMessage(nil, &Message{Kind: KindRequest, ID: 1, Source: "our@a:b:c", Target: "our@d:e:f", Body: []byte("hello")})
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeMessage(b) }); n != 0 {
		t.Errorf("DecodeMessage allocates %v times, want 0", n)
	}
	buf := make([]byte, 0, 256)
	q := &Request{Target: "our@a:b:c", Body: []byte("hello")}
	if n := testing.AllocsPerRun(100, func() { buf = AppendRequest(buf[:0], q) }); n != 0 {
		t.Errorf("AppendRequest into a large enough buffer allocates %v times, want 0", n)
	}
}

// TestSeeds checks that the fuzz seed corpora under testdata/fuzz hold the
// current sample encodings; WEFT_WRITE_SEEDS=1 rewrites them.
func TestSeeds(t *testing.T) {
	rewrite := os.Getenv("WEFT_WRITE_SEEDS") == "1"
	write := func(name string, i int, b []byte) {
		dir := filepath.Join("testdata", "fuzz", name)
		file := filepath.Join(dir, fmt.Sprintf("seed%d", i))
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if !rewrite {
			got, err := os.ReadFile(file)
			if err != nil || string(got) != data {
				t.Errorf("%s is missing or stale (err %v); run WEFT_WRITE_SEEDS=1 go test -run TestSeeds ./abi/", file, err)
			}
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range sampleMessages() {
		write("FuzzDecodeMessage", i, AppendMessage(nil, &m))
	}
	for i, q := range sampleRequests() {
		write("FuzzDecodeRequest", i, AppendRequest(nil, &q))
	}
	for i, p := range sampleResponses() {
		write("FuzzDecodeResponse", i, AppendResponse(nil, &p))
	}
}
