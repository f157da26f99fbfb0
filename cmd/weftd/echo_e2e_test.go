package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/internal/echoed"
)

// TestHugeTargetNotEchoed sends the real weftd a target of 1 MiB that is
// no address, as a Connect client does over the Unix socket (JSON, so the
// bytes on the wire are what is measured), and one of 100 KiB through the
// weft CLI (an argument can hold no more than 128 KiB). The answer is
// invalid_argument whose message repeats at most echoed.MaxBytes of
// the target and says how much it cut, the daemon's audit line for each
// call is as small, and no line the daemon logs is long.
func TestHugeTargetNotEchoed(t *testing.T) {
	n := startNode(t, t.TempDir())
	const bound = echoed.MaxBytes + 512 // the cut value and the sentence around it

	huge := strings.Repeat("A", 1<<20)
	body, err := json.Marshal(map[string]any{"target": huge, "request": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://weftd/weft.v1.MessageService/Send", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := unixClient(n.sock)
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ce struct{ Code, Message string }
	if err := json.Unmarshal(answer, &ce); err != nil || ce.Code != "invalid_argument" {
		t.Fatalf("answer (HTTP %d, %d bytes) %.300q…: want a Connect invalid_argument error (%v)", res.StatusCode, len(answer), answer, err)
	}
	if len(answer) > bound || !strings.HasPrefix(ce.Message, `target: invalid address in "AAAA`) || !strings.Contains(ce.Message, `…(1048320 bytes cut)"`) {
		t.Errorf("the answer to a 1 MiB target is %d bytes, %.600s; want at most %d, the target cut", len(answer), answer, bound)
	}
	checkAuditLine(t, n, bound)

	// The CLI names the target it was given, whole (it is the user's own
	// argument); what the node adds repeats it cut.
	target := strings.Repeat("B", 100<<10)
	out, errOut, code := n.weft(t, "send", target, "hello")
	if code != 2 || out != "" || len(errOut) > len(target)+bound || strings.Count(errOut, target) != 1 ||
		!strings.Contains(errOut, "invalid_argument") || !strings.Contains(errOut, "…(102144 bytes cut)") {
		t.Errorf("weft send to a 100 KiB target: code %d, stdout %q, stderr of %d bytes %.600q; want code 2, the target once, and the node's message, the target cut, in at most %d bytes more",
			code, out, len(errOut), errOut, bound)
	}
	checkAuditLine(t, n, bound)

	n.stop(t)
	for _, line := range n.seen {
		if len(line) > max(bound, controlapi.MaxErrorMessageBytes) {
			t.Errorf("weftd logged a line of %d bytes: %.300s…", len(line), line)
		}
	}
}

// checkAuditLine waits for the next audit line of a Send and checks that it
// is at most bound bytes, the target in it cut.
func checkAuditLine(t *testing.T, n *node, bound int) {
	t.Helper()
	var audit map[string]any
	line := n.waitFor(t, "an audit line for Send", func(line string) bool {
		return jsonRecord("audit", &audit)(line) && audit["procedure"] == "/weft.v1.MessageService/Send"
	})
	target, _ := audit["target"].(string)
	if len(line) > bound || len(target) > echoed.MaxBytes+32 || !strings.HasSuffix(target, " bytes cut)") || audit["outcome"] != "invalid_argument" {
		t.Errorf("audit line of %d bytes: %.600s; want at most %d, the target cut, outcome invalid_argument", len(line), line, bound)
	}
}
