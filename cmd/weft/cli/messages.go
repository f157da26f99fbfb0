package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
)

// defaultAwait is how long weft send waits for a response unless --await
// says otherwise.
const defaultAwait = 5 * time.Second

var cmdSend = &command{
	name:    "send",
	usage:   "weft send ADDRESS BODY [--await DUR] [--blob FILE [--mime TYPE]] [--metadata TEXT] [--blob-out FILE]",
	summary: "send a request as the operator and print the response",
	details: `Send sends a request with BODY to ADDRESS ("node@name:package:publisher",
node "our" for this node) from operator:sys:weft, waits for the response
and prints its body as it is, followed by a newline, on stdout and nothing
else there. BODY is taken literally; "-" reads it from stdin. A BODY that
starts with "-" goes after "--".

If the request fails (timeout, offline, no_such_process, no_capability,
mailbox_full, killed, too_large) weft says why on stderr and exits with 3.
With --json, the whole SendResponse is printed as JSON instead, and a
failed request still exits with 3.

Flags:
  --await DUR        how long to wait for the response (default 5s); 0 sends
                     without expecting one, printing nothing, once the
                     request is in the target's mailbox. The call's
                     --timeout is added to it
  --blob FILE        attach FILE's bytes as the request's blob
  --mime TYPE        the blob's media type (default application/octet-stream)
  --metadata TEXT    attach TEXT as the request's metadata
  --blob-out FILE    write the response's blob, if any, to FILE

Examples:
  weft send our@echo:echo:examples hello
  weft send our@chat:chat:alice.os '{"Send":{"to":"bob.os","text":"hi"}}' --await 30s
  echo '{"Get":null}' | weft send our@kv:kv:weft.os -
  weft send our@files:files:weft.os put --blob photo.jpg --mime image/jpeg
  weft send --await 0 our@log:log:weft.os 'fire and forget'
`,
	run: runSend,
}

func runSend(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	await := defaultAwait
	mime := "application/octet-stream"
	var blobFile, blobOut, metadata string
	var metadataSet bool
	fs.durationVar(&await, "await")
	fs.stringVar(&blobFile, "blob")
	fs.stringVar(&mime, "mime")
	fs.stringVar(&blobOut, "blob-out")
	fs.define(&flagDef{set: func(s string) error { metadata, metadataSet = s, true; return nil }}, []string{"metadata"})
	pos, err := exactArgs(fs, args, 2, 2, "ADDRESS and BODY")
	if err != nil {
		return err
	}
	target, body := pos[0], []byte(pos[1])
	if pos[1] == "-" {
		if body, err = io.ReadAll(r.env.Stdin); err != nil {
			return fmt.Errorf("read body from stdin: %w", err)
		}
	}
	req := &weftv1.SendRequest{Target: target, Request: &weftv1.Request{Body: body}}
	if await > 0 {
		req.Request.ExpectsResponse = durationpb.New(await)
	}
	if metadataSet {
		req.Request.Metadata = &metadata
	}
	if blobFile != "" {
		b, err := os.ReadFile(blobFile)
		if err != nil {
			return fmt.Errorf("read --blob: %w", err)
		}
		req.Blob = &weftv1.Blob{Mime: mime, Bytes: b}
	}
	c, cctx, cancel, err := r.dialCall(ctx, await)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.messages.Send(cctx, connect.NewRequest(req))
	if err != nil {
		return &nodeError{op: "send to " + target, err: err}
	}
	m := resp.Msg
	if r.g.json {
		if err := r.printJSON(m); err != nil {
			return err
		}
	}
	if se := m.GetError(); se != nil {
		return &sendError{target: target, e: se}
	}
	if blob := m.GetBlob(); blob != nil {
		if blobOut != "" {
			if err := os.WriteFile(blobOut, blob.GetBytes(), 0o644); err != nil {
				return fmt.Errorf("write --blob-out: %w", err)
			}
		} else if !r.g.json {
			fmt.Fprintf(r.env.Stderr, "weft: the response carried a blob (%d bytes, %s); pass --blob-out FILE to keep it\n",
				len(blob.GetBytes()), blob.GetMime())
		}
	}
	if r.g.json {
		return nil
	}
	if res := m.GetResponse(); res != nil {
		if _, err := r.env.Stdout.Write(append(res.GetBody(), '\n')); err != nil {
			return err
		}
	}
	return nil
}

var cmdTap = &command{
	name:    "tap",
	usage:   "weft tap [PROCESS...] [--body N]",
	summary: "follow the messages delivered on the node",
	details: `Tap prints a line for every message delivered on the node, or only those
to or from the PROCESSes named ("name:package:publisher"), until
interrupted (Ctrl-C), then exits with 0; if the node ends the stream (it
is stopping), tap exits with 2. Each line has the time, the kind
(request, response, error), source → target, the message id, the sizes of
body and blob, and for an error its kind. When tap falls behind, the node
drops envelopes rather than slowing down, and tap says how many it lost.
With --json each envelope is printed as one JSON object (a TapResponse) per
line.

Flags:
  --body N   show up to N bytes of each body (at most 4096; default 0)

Examples:
  weft tap
  weft tap chat:chat:alice.os --body 64
  weft --json tap | jq -c 'select(.envelope.kind == "ENVELOPE_KIND_ERROR")'
`,
	run: runTap,
}

func runTap(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	var bodyBytes uint64
	fs.uintVar(&bodyBytes, 4096, "body")
	pos, err := exactArgs(fs, args, 0, 1<<20, "")
	if err != nil {
		return err
	}
	c, err := r.dial()
	if err != nil {
		return err
	}
	// Not bounded by --timeout: tap runs until ctx is cancelled.
	stream, err := c.messages.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{Processes: pos, BodyBytes: uint32(bodyBytes)}))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return &nodeError{op: "tap", err: err}
	}
	defer stream.Close()
	node := r.nodeID(ctx, c)
	for stream.Receive() {
		m := stream.Msg()
		if r.g.json {
			b, err := protojson.Marshal(m)
			if err != nil {
				return fmt.Errorf("encode JSON: %w", err)
			}
			fmt.Fprintf(r.env.Stdout, "%s\n", b)
			continue
		}
		if n := m.GetDropped(); n > 0 {
			fmt.Fprintf(r.env.Stdout, "... %d envelopes dropped: tap fell behind\n", n)
		}
		if e := m.GetEnvelope(); e != nil {
			fmt.Fprintln(r.env.Stdout, envelopeLine(e, node))
		}
	}
	switch err := stream.Err(); {
	case ctx.Err() != nil:
		return nil // interrupted: the way tap is meant to end
	case err != nil:
		return &nodeError{op: "tap", err: err}
	default:
		return &nodeError{op: "tap", err: errors.New("the node ended the stream (is it stopping?)")}
	}
}

// envelopeLine is one envelope as tap prints it; addresses on node are
// written our@….
func envelopeLine(e *weftv1.Envelope, node string) string {
	var b strings.Builder
	ts := "-"
	if e.GetTime() != nil {
		ts = e.GetTime().AsTime().Local().Format("15:04:05.000")
	}
	kind := strings.ToLower(strings.TrimPrefix(e.GetKind().String(), "ENVELOPE_KIND_"))
	fmt.Fprintf(&b, "%s %-8s %s → %s id=%d body=%dB", ts, kind, ourAddr(e.GetSource(), node), ourAddr(e.GetTarget(), node), e.GetId(), e.GetBodySize())
	if e.GetBlobSize() > 0 || e.GetBlobMime() != "" {
		fmt.Fprintf(&b, " blob=%dB", e.GetBlobSize())
		if e.GetBlobMime() != "" {
			fmt.Fprintf(&b, " (%s)", e.GetBlobMime())
		}
	}
	if d := e.GetExpectsResponse(); d != nil {
		fmt.Fprintf(&b, " await=%s", d.AsDuration())
	}
	if e.GetInherit() {
		b.WriteString(" inherit")
	}
	if n := e.GetCapabilities(); n > 0 {
		fmt.Fprintf(&b, " caps=%d", n)
	}
	if e.GetKind() == weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR || e.GetErrorKind() != weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED {
		fmt.Fprintf(&b, " error=%s", kindName(e.GetErrorKind()))
		if d := e.GetErrorDetail(); d != "" {
			fmt.Fprintf(&b, " (%s)", oneLine(d))
		}
	}
	if e.Metadata != nil {
		fmt.Fprintf(&b, " metadata=%q", e.GetMetadata())
	}
	if len(e.GetBody()) > 0 {
		fmt.Fprintf(&b, " %q", e.GetBody())
		if uint32(len(e.GetBody())) < e.GetBodySize() {
			b.WriteString("…")
		}
	}
	return b.String()
}

// nodeID asks the node for its id, for ourAddr; "" if it cannot say.
func (r *runner) nodeID(ctx context.Context, c *conn) string {
	cctx, cancel := r.callContext(ctx, 0)
	defer cancel()
	resp, err := c.node.GetInfo(cctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		return ""
	}
	return resp.Msg.GetNodeId()
}

// ourAddr writes an address on node as our@…, as people do; others as
// they are.
func ourAddr(addr, node string) string {
	if rest, ok := strings.CutPrefix(addr, node+"@"); ok && node != "" {
		return "our@" + rest
	}
	return addr
}
