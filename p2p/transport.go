package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/p2p/wire"
)

// peerState is what the Node keeps for one peer: its outbound queue and
// the senders draining it, its inbound rate limit and its counters. It
// exists while the peer is connected or has messages queued.
type peerState struct {
	id    peer.ID
	node  string
	stats peerCounters
	limit *bucket

	mu      sync.Mutex
	queue   []outbound
	workers int          // goroutines draining queue, at most sendersPerPeer
	idle    []keptStream // open streams to the peer, no frame on them, last used last
	gone    bool         // dropped from Node.peers: enqueue finds the new one
}

// keptStream is an outbound stream waiting for its next frame.
type keptStream struct {
	s     network.Stream
	since time.Time // when its last frame was acknowledged
}

// keepMaxFrame is the largest frame after which a stream is kept: the
// sender closes a stream that carried a larger one, so that the receive
// window yamux grew for it, which counts against the peer's memory until
// the stream ends, is given back.
const keepMaxFrame = 256 << 10

// The statuses a receiver writes back on a stream, one byte for each
// frame, in the order of the frames: ackTaken once it has handed the frame
// to its kernel, or one of the refusals, after which it takes nothing more
// from the stream (see the package doc).
const (
	ackTaken byte = 0x01
	// statusTooLarge: the frame is over the receiver's limit; the sender
	// fails the message too_large.
	statusTooLarge byte = 0x02
	// statusNoMemory: the frame does not fit in the memory the resource
	// manager leaves the sending peer now; the sender fails the message
	// mailbox_full.
	statusNoMemory byte = 0x03
	// statusBadFrame: the bytes were not a well-formed frame.
	statusBadFrame byte = 0x04
)

// batchMaxFrames bounds the frames a sender writes on a stream at once.
// With the byte bound, keepMaxFrame, it also bounds what a receiver reads
// and discards after refusing a frame of a batch.
const batchMaxFrames = 64

// sendersPerPeer bounds the goroutines writing to one peer at once (see
// the package doc).
const sendersPerPeer = 4

// outbound is one frame waiting to be sent: a message, or a revocation
// (msg nil).
type outbound struct {
	msg   *kernel.RemoteMessage
	frame *p2pv1.Frame
	size  int // proto.Size(frame)
}

var _ kernel.Transport = (*Node)(nil)

// The codes a receiver resets a stream with, so that the sender knows why
// its frame was refused, when it cannot say so in band: a frame it refused
// was followed by more than it reads to discard (a frame of over
// keepMaxFrame, which a sender writes alone).
const (
	// resetBadFrame: the stream did not carry one well-formed frame.
	resetBadFrame network.StreamErrorCode = 0x77650001
	// resetTooLarge: the frame is over the receiver's limit; the sender
	// fails the message too_large.
	resetTooLarge network.StreamErrorCode = 0x77650002
	// resetShuttingDown: the receiver is closing.
	resetShuttingDown network.StreamErrorCode = 0x77650003
	// resetNoMemory: the frame does not fit in the memory the resource
	// manager leaves the sending peer now; the sender fails the message
	// mailbox_full, as for a receiver with no room for it.
	resetNoMemory network.StreamErrorCode = 0x77650004
)

func maxFrameBytes(l kernel.Limits) int { return wire.MaxFrameBytes(l) }

// Send queues m for its target's node and returns at once (kernel.Transport).
// It refuses, with a *kernel.SendError, a message whose frame would be
// over the frame limit (too_large), one to a node with no known address
// that is not connected, and one over the node's queue bound (offline).
// The node's senders dial it (within DialTimeout) and write each message
// on a kept stream of their own (see the package doc); what they cannot
// deliver they hand back to kernel.Undelivered as offline.
func (n *Node) Send(m *kernel.RemoteMessage) error {
	id, err := n.peerID(m.Target.Node)
	if err != nil {
		return n.sendErr(kernel.ErrOffline, m, err.Error())
	}
	if id == n.h.ID() {
		return n.sendErr(kernel.ErrOffline, m, "the target is this node; the kernel delivers local messages itself")
	}
	f, err := pbconv.RemoteFrame(m)
	if err != nil {
		return n.sendErr(kernel.ErrOffline, m, fmt.Sprintf("cannot put the message on the wire: %v", err))
	}
	size := proto.Size(f)
	if size > n.maxFrame {
		return n.sendErr(kernel.ErrTooLarge, m, fmt.Sprintf("the message is %d bytes on the wire, more than the %d bytes a frame may hold", size, n.maxFrame))
	}
	if !n.reachable(id) {
		return n.sendErr(kernel.ErrOffline, m, fmt.Sprintf("node %s is not connected and no address of it is known; connect to it first", m.Target.Node))
	}
	if err := n.enqueue(id, m.Target.Node, outbound{msg: m, frame: f, size: size}); err != nil {
		return n.sendErr(kernel.ErrOffline, m, err.Error())
	}
	return nil
}

// Revoke queues, best effort, a revocation of c for node
// (kernel.Transport).
func (n *Node) Revoke(node string, c kernel.SignedCapability) {
	id, err := PeerID(node)
	if err != nil || id == n.h.ID() {
		n.log.Warn("p2p: revocation not sent", "node", node, "capability", c.Capability.String(), "err", err)
		return
	}
	f, err := pbconv.RevocationFrame(c)
	if err != nil {
		n.log.Warn("p2p: revocation not sent", "node", node, "capability", c.Capability.String(), "err", err)
		return
	}
	if !n.reachable(id) {
		n.log.Info("p2p: revocation not sent: node unreachable", "node", node, "capability", c.Capability.String())
		return
	}
	if err := n.enqueue(id, node, outbound{frame: f, size: proto.Size(f)}); err != nil {
		n.log.Warn("p2p: revocation not sent", "node", node, "capability", c.Capability.String(), "err", err)
	}
}

func (n *Node) sendErr(kind kernel.ErrorKind, m *kernel.RemoteMessage, detail string) *kernel.SendError {
	return &kernel.SendError{Kind: kind, Target: m.Target, Detail: detail}
}

// reachable reports whether id is connected, has an address to dial, or
// may be looked up (the DHT is on).
func (n *Node) reachable(id peer.ID) bool {
	switch n.h.Network().Connectedness(id) {
	case network.Connected, network.Limited:
		return true
	}
	return len(n.h.Peerstore().Addrs(id)) > 0 || len(n.book.addrs(id)) > 0 || n.canLookUp()
}

// state returns the state of peer id, making it if needed; nil once the
// node is closing.
func (n *Node) state(id peer.ID, node string) *peerState {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers == nil {
		return nil
	}
	ps := n.peers[id]
	if ps == nil {
		ps = &peerState{id: id, node: node, limit: newBucket(n.cfg.InboundRate, n.cfg.InboundBurst)}
		n.peers[id] = ps
		n.ids[node] = id
	}
	return ps
}

// peerID is PeerID, without decoding the node id again for a peer with
// state.
func (n *Node) peerID(node string) (peer.ID, error) {
	n.mu.Lock()
	id, ok := n.ids[node]
	n.mu.Unlock()
	if ok {
		return id, nil
	}
	return PeerID(node)
}

// peerIfKnown returns the state of id if there is one.
func (n *Node) peerIfKnown(id peer.ID) *peerState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// forgetIdle drops the state of a peer that disconnected, unless messages
// wait for it.
func (n *Node) forgetIdle(id peer.ID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps := n.peers[id]
	if ps == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.workers == 0 && len(ps.queue) == 0 {
		ps.gone = true
		delete(n.peers, id)
		delete(n.ids, ps.node)
		for _, k := range ps.idle {
			k.s.Reset()
		}
		ps.idle = nil
	}
}

// enqueue adds item to node id's queue and starts a sender for it unless
// sendersPerPeer run or as many as there are queued messages.
func (n *Node) enqueue(id peer.ID, node string, item outbound) error {
	for {
		ps := n.state(id, node)
		if ps == nil {
			return errors.New("the node's network is shutting down")
		}
		ps.mu.Lock()
		if ps.gone {
			ps.mu.Unlock()
			continue
		}
		if queued := len(ps.queue); queued >= n.cfg.QueueLength {
			ps.mu.Unlock()
			return fmt.Errorf("%d messages already wait to be sent to node %s (queue_length)", queued, node)
		}
		ps.queue = append(ps.queue, item)
		start := ps.workers < sendersPerPeer && ps.workers < len(ps.queue)
		if start {
			ps.workers++
		}
		ps.mu.Unlock()
		if start {
			n.goRun(func() { n.work(ps) })
		}
		return nil
	}
}

// work sends ps's queue until it is empty or the node closes.
func (n *Node) work(ps *peerState) {
	for {
		ps.mu.Lock()
		if len(ps.queue) == 0 || n.ctx.Err() != nil {
			ps.workers--
			ps.mu.Unlock()
			return
		}
		batch := ps.takeBatch()
		ps.mu.Unlock()
		n.deliver(ps, batch)
	}
}

// takeBatch removes from ps's queue (not empty; ps.mu held) the frames one
// stream carries next: the first, and, if it is at most keepMaxFrame
// bytes, those behind it while they fit in keepMaxFrame bytes in all, up
// to batchMaxFrames. A larger frame goes alone.
func (ps *peerState) takeBatch() []outbound {
	k, total := 1, ps.queue[0].size
	if total <= keepMaxFrame {
		for k < len(ps.queue) && k < batchMaxFrames && ps.queue[k].size <= keepMaxFrame-total {
			total += ps.queue[k].size
			k++
		}
	}
	batch := slices.Clone(ps.queue[:k])
	clear(ps.queue[:k])
	ps.queue = ps.queue[k:]
	return batch
}

// deliver sends batch to ps on a kept stream, connecting first if needed.
// A node that cannot be reached within DialTimeout fails batch and
// everything queued behind it.
func (n *Node) deliver(ps *peerState, batch []outbound) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
	defer cancel()
	ctx = network.WithAllowLimitedConn(ctx, "weft message")
	switch n.h.Network().Connectedness(ps.id) {
	case network.Connected, network.Limited:
	default:
		n.addKnownAddrs(ps.id)
		n.clearBackoff(ps.id)
		if err := n.connect(ctx, ps.id); err != nil {
			detail := fmt.Sprintf("node %s cannot be reached (dial timeout %v): %v", ps.node, n.cfg.DialTimeout, err)
			ps.mu.Lock()
			failed := append(batch, ps.queue...)
			ps.queue = nil
			ps.mu.Unlock()
			for _, it := range failed {
				n.undelivered(ps, it, kernel.ErrOffline, detail)
			}
			return
		}
	}
	for len(batch) > 0 {
		s, reused := n.takeStream(ps)
		if s == nil {
			var err error
			s, err = n.h.NewStream(ctx, ps.id, ProtocolID)
			if err != nil {
				kind := kernel.ErrOffline
				if errors.Is(err, network.ErrResourceLimitExceeded) {
					// This node's own limits: busy, not gone.
					kind = kernel.ErrMailboxFull
				}
				for _, it := range batch {
					n.undelivered(ps, it, kind, fmt.Sprintf("node %s: open a stream: %v", ps.node, err))
				}
				return
			}
		}
		batch = n.sendOn(ps, s, reused, batch)
	}
}

// takeStream returns an idle stream to ps from its pool, most recently
// used first, or nil if none is left open; it closes those whose
// connection is gone, and those through a relay once a direct connection
// to ps is open (hole punching made one), so that messages move to it.
func (n *Node) takeStream(ps *peerState) (s network.Stream, reused bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for len(ps.idle) > 0 {
		k := ps.idle[len(ps.idle)-1]
		ps.idle[len(ps.idle)-1] = keptStream{}
		ps.idle = ps.idle[:len(ps.idle)-1]
		if k.s.Conn().IsClosed() {
			k.s.Reset()
			continue
		}
		if k.s.Conn().Stat().Limited && n.directConn(ps.id) {
			k.s.Close()
			continue
		}
		return k.s, true
	}
	return nil, false
}

// directConn reports whether a connection to id that goes through no
// relay is open.
func (n *Node) directConn(id peer.ID) bool {
	for _, c := range n.h.Network().ConnsToPeer(id) {
		if !c.Stat().Limited && !c.IsClosed() {
			return true
		}
	}
	return false
}

// keepStream puts s, whose frame of size bytes was acknowledged, back in
// ps's pool, or closes it: after a frame over keepMaxFrame, when the pool
// is full, or once ps is dropped or the node closes.
func (n *Node) keepStream(ps *peerState, s network.Stream, size int) {
	if size <= keepMaxFrame {
		ps.mu.Lock()
		keep := !ps.gone && len(ps.idle) < sendersPerPeer && n.ctx.Err() == nil
		if keep {
			ps.idle = append(ps.idle, keptStream{s: s, since: time.Now()})
		}
		ps.mu.Unlock()
		if keep {
			return
		}
	}
	s.Close()
}

// closeIdleStreams closes the streams of ps that have waited in its pool
// since before cutoff.
func (ps *peerState) closeIdleStreams(cutoff time.Time) {
	ps.mu.Lock()
	var old []network.Stream
	kept := ps.idle[:0]
	for _, k := range ps.idle {
		if k.since.Before(cutoff) {
			old = append(old, k.s)
		} else {
			kept = append(kept, k)
		}
	}
	clear(ps.idle[len(kept):])
	ps.idle = kept
	ps.mu.Unlock()
	for _, s := range old {
		s.Close()
	}
}

// idleLoop closes outbound streams idle for StreamIdleTimeout, sweeping
// every half of it.
func (n *Node) idleLoop() {
	t := time.NewTicker(n.cfg.StreamIdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			n.mu.Lock()
			peers := make([]*peerState, 0, len(n.peers))
			for _, ps := range n.peers {
				peers = append(peers, ps)
			}
			n.mu.Unlock()
			for _, ps := range peers {
				ps.closeIdleStreams(now.Add(-n.cfg.StreamIdleTimeout))
			}
		}
	}
}

// sendOn writes batch's frames on s in one write and reads the
// receiver's status of each, then keeps s for the next batch. It returns
// the frames still to be sent, which the receiver did not take: those
// behind one it refused in band, or all it had not taken when it closed
// the stream between frames (a kept stream it had closed as idle, say),
// so that another stream may carry them.
func (n *Node) sendOn(ps *peerState, s network.Stream, reused bool, batch []outbound) (again []outbound) {
	s.SetDeadline(time.Now().Add(n.cfg.WriteTimeout))
	buf := make([]byte, 0, batchBytes(batch))
	frames := batch[:0:0]
	for _, it := range batch {
		var err error
		if buf, err = wire.AppendFrame(buf, it.frame, n.maxFrame); err != nil {
			n.undelivered(ps, it, kernel.ErrTooLarge, fmt.Sprintf("node %s: write the message: %v", ps.node, err))
			continue
		}
		frames = append(frames, it)
	}
	if len(frames) == 0 {
		n.keepStream(ps, s, 0)
		return nil
	}
	if _, err := (countingWriter{s, &ps.stats.bytesOut}).Write(buf); err != nil {
		// The receiver may have taken some, and may have reset the
		// stream saying why it refused the next; reads tell (the errors
		// of a write do not), at once.
		s.SetReadDeadline(time.Now())
		taken, status, rerr := readStatuses(s, len(frames))
		s.Reset()
		ps.stats.messagesOut.Add(uint64(taken))
		rest := frames[taken:]
		switch {
		case len(rest) == 0:
			// Every frame acknowledged, though the write failed: a
			// receiver that answered before reading it all.
			return nil
		case rerr == nil:
			n.refusedInBand(ps, rest[0], status)
			rest = rest[1:]
		case len(rest) == 1 && n.refused(ps, rest[0], rerr):
			return nil
		}
		for _, it := range rest {
			n.undelivered(ps, it, kernel.ErrOffline, fmt.Sprintf("node %s: write the message: %v", ps.node, err))
		}
		return nil
	}
	ps.stats.messagesOut.Add(uint64(len(frames)))
	taken, status, err := readStatuses(s, len(frames))
	if taken == len(frames) {
		n.keepStream(ps, s, len(buf))
		return nil
	}
	rest := frames[taken:]
	switch {
	case err == nil:
		// Refused in band: the receiver took nothing after it.
		ps.stats.messagesOut.Add(-uint64(len(rest)))
		s.Reset()
		n.refusedInBand(ps, rest[0], status)
		return rest[1:]
	case err == io.EOF:
		// The receiver closed the stream between frames without taking
		// the rest (it ends a stream only between frames).
		ps.stats.messagesOut.Add(-uint64(len(rest)))
		s.Close()
		if reused || taken > 0 {
			return rest
		}
		for _, it := range rest {
			n.undelivered(ps, it, kernel.ErrOffline, fmt.Sprintf("node %s closed the stream without taking the message", ps.node))
		}
		return nil
	}
	s.Reset()
	// A reset's code names the frame it refused only when it is the one
	// frame written: a receiver resets, rather than refuse in band, only
	// a frame written alone.
	if len(frames) == 1 && n.refused(ps, rest[0], err) {
		return nil
	}
	// Taken or not: their requests, if any, end at their timeout.
	ps.stats.errors.Add(uint64(len(rest)))
	n.log.Debug("p2p: peer did not acknowledge messages", "node", ps.node, "messages", len(rest), "err", err)
	return nil
}

// batchBytes is what batch's frames take on the wire.
func batchBytes(batch []outbound) int {
	total := 0
	for _, it := range batch {
		total += protowire.SizeVarint(uint64(it.size)) + it.size
	}
	return total
}

// readStatuses reads the receiver's statuses of n frames written on s, up
// to the first that is not ackTaken. It returns how many were taken, and
// then either that status (err nil) or the error that ended the reading.
func readStatuses(s io.Reader, n int) (taken int, status byte, err error) {
	var buf [batchMaxFrames]byte
	for taken < n {
		k, err := s.Read(buf[:n-taken])
		for _, b := range buf[:k] {
			if b != ackTaken {
				return taken, b, nil
			}
			taken++
		}
		if err != nil {
			return taken, 0, err
		}
	}
	return taken, 0, nil
}

// refusedInBand fails it with the kind the receiver's status says.
func (n *Node) refusedInBand(ps *peerState, it outbound, status byte) {
	switch status {
	case statusTooLarge:
		n.undelivered(ps, it, kernel.ErrTooLarge, fmt.Sprintf("node %s refused the message: its frame is over that node's size limit", ps.node))
	case statusNoMemory:
		n.undelivered(ps, it, kernel.ErrMailboxFull, fmt.Sprintf("node %s has no memory for the message now (its resource limits)", ps.node))
	case statusBadFrame:
		n.log.Warn("p2p: peer refused a frame as malformed", "node", ps.node)
		n.undelivered(ps, it, kernel.ErrOffline, fmt.Sprintf("node %s refused the message as malformed", ps.node))
	default:
		n.log.Warn("p2p: peer answered a message with an unknown status", "node", ps.node, "byte", status)
		n.undelivered(ps, it, kernel.ErrOffline, fmt.Sprintf("node %s answered the message with an unknown status %#x", ps.node, status))
	}
}

// refused reports whether err, from reading a stream, is the receiver's
// refusal of the frame with a code that fails the message: too_large for a
// frame over the receiver's size limit, mailbox_full for one over the
// memory it grants now. It then reports the message undelivered.
func (n *Node) refused(ps *peerState, item outbound, err error) bool {
	var se *network.StreamError
	if !errors.As(err, &se) || !se.Remote {
		return false
	}
	switch se.ErrorCode {
	case resetTooLarge:
		n.undelivered(ps, item, kernel.ErrTooLarge, fmt.Sprintf("node %s refused the message: its frame is over that node's size limit", ps.node))
	case resetNoMemory:
		n.undelivered(ps, item, kernel.ErrMailboxFull, fmt.Sprintf("node %s has no memory for the message now (its resource limits)", ps.node))
	default:
		return false
	}
	return true
}

// undelivered reports a frame that could not be sent: a message to the
// kernel, a revocation to the log.
func (n *Node) undelivered(ps *peerState, it outbound, kind kernel.ErrorKind, detail string) {
	ps.stats.errors.Add(1)
	if it.msg == nil {
		n.log.Info("p2p: revocation not delivered", "node", ps.node, "detail", detail)
		return
	}
	n.log.Debug("p2p: message not delivered", "node", ps.node, "kind", kind, "detail", detail)
	n.k.Undelivered(it.msg, kind, detail)
}

// stopQueues makes every later enqueue fail and returns the peers' states,
// whose queues failQueued empties once the workers have stopped.
func (n *Node) stopQueues() map[peer.ID]*peerState {
	n.mu.Lock()
	peers := n.peers
	n.peers = nil
	n.mu.Unlock()
	for _, ps := range peers {
		ps.mu.Lock()
		ps.gone = true
		idle := ps.idle
		ps.idle = nil
		ps.mu.Unlock()
		for _, k := range idle {
			k.s.Reset()
		}
	}
	return peers
}

// failQueued reports every message still queued undelivered.
func failQueued(n *Node, peers map[peer.ID]*peerState, detail string) {
	for _, ps := range peers {
		ps.mu.Lock()
		q := ps.queue
		ps.queue = nil
		ps.mu.Unlock()
		for _, it := range q {
			n.undelivered(ps, it, kernel.ErrOffline, detail)
		}
	}
}

// handleStream reads the frames of an inbound stream one after another
// and hands each to the kernel, as from the stream's authenticated peer,
// and writes each frame's status back: ackTaken once the kernel has it,
// the acknowledgements of frames that came together in one write. It
// closes the stream when the sender closes its side or when no frame
// begins within twice StreamIdleTimeout, and refuses the first frame that
// is malformed, over the size limit or over the memory the peer is
// granted (refuseFrame).
func (n *Node) handleStream(s network.Stream) {
	id := s.Conn().RemotePeer()
	ps := n.peerIfKnown(id)
	if ps == nil {
		node, err := NodeID(id)
		if err != nil {
			n.log.Debug("p2p: stream from a peer that is not a node", "peer", id, "err", err)
			s.Reset()
			return
		}
		if ps = n.state(id, node); ps == nil {
			s.ResetWithError(resetShuttingDown)
			return
		}
	}
	in := bufio.NewReaderSize(s, inboundBuffer)
	fr := &frameReader{s: s, r: in, n: &ps.stats.bytesIn, frameTimeout: n.cfg.WriteTimeout}
	var acks [batchMaxFrames]byte
	owed := 0 // frames taken, not yet acknowledged
	for {
		s.SetReadDeadline(time.Now().Add(2 * n.cfg.StreamIdleTimeout))
		f, err := wire.ReadFrame(fr, n.maxFrame)
		if err != nil && fr.read == 0 {
			// Between frames (none owed: see below): the sender closed
			// its side, or let the stream idle, or went away.
			var ne net.Error
			if err == io.EOF || errors.As(err, &ne) && ne.Timeout() {
				s.Close()
			} else {
				s.Reset()
			}
			return
		}
		if err != nil {
			n.refuseFrame(ps, s, acks[:owed], err)
			return
		}
		m, revoked, err := pbconv.FromRemoteFrame(f)
		if err != nil {
			n.refuseFrame(ps, s, acks[:owed], fmt.Errorf("%w: %w", wire.ErrMalformed, err))
			return
		}
		ps.stats.messagesIn.Add(1)
		n.receive(ps, m, revoked)
		fr.done()
		acks[owed] = ackTaken
		owed++
		// The next frame's acknowledgement goes with this one's if the
		// whole of it has come already (the sender wrote them together),
		// so reading it will not wait.
		if owed < len(acks) && frameBuffered(in) {
			continue
		}
		s.SetWriteDeadline(time.Now().Add(n.cfg.WriteTimeout))
		if _, err := s.Write(acks[:owed]); err != nil {
			n.log.Debug("p2p: acknowledge frames", "node", ps.node, "err", err)
			s.Reset()
			return
		}
		owed = 0
	}
}

// inboundBuffer is the buffer under an inbound stream's frame reader, in
// which the frames a sender wrote together are found whole.
const inboundBuffer = 4 << 10

// frameBuffered reports whether a whole frame waits in r's buffer.
func frameBuffered(r *bufio.Reader) bool {
	b, _ := r.Peek(r.Buffered())
	size, k := protowire.ConsumeVarint(b)
	return k > 0 && size <= uint64(len(b)-k)
}

// refuseFrame counts and logs a frame that could not be read or taken,
// and tells the sender why: it writes the statuses owed for the frames
// taken before it and the refusal's, closes its side of s, and reads and
// discards what the sender wrote after, up to keepMaxFrame bytes (a
// batch is at most that), until the sender closes or resets s. A sender
// that writes on (a frame of its own over keepMaxFrame, written alone)
// gets a reset with the code of the refusal instead.
func (n *Node) refuseFrame(ps *peerState, s network.Stream, owed []byte, err error) {
	ps.stats.errors.Add(1)
	n.log.Warn("p2p: bad frame from peer", "node", ps.node, "err", err)
	code, status := resetBadFrame, statusBadFrame
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		code, status = resetTooLarge, statusTooLarge
	case errors.Is(err, errNoMemory):
		code, status = resetNoMemory, statusNoMemory
	}
	s.SetDeadline(time.Now().Add(n.cfg.WriteTimeout))
	if _, err := s.Write(append(owed, status)); err != nil {
		s.ResetWithError(code)
		return
	}
	s.CloseWrite()
	if _, err := io.CopyN(io.Discard, s, keepMaxFrame); err == io.EOF {
		s.Close()
		return
	}
	s.ResetWithError(code)
}

// receive hands the kernel what came from ps.
func (n *Node) receive(ps *peerState, m *kernel.RemoteMessage, revoked *kernel.SignedCapability) {
	if revoked != nil {
		if err := n.k.ReceiveRevocation(ps.node, *revoked); err != nil {
			if errors.Is(err, kernel.ErrSpoofed) {
				ps.stats.spoofed.Add(1)
			} else {
				ps.stats.errors.Add(1)
			}
			n.log.Warn("p2p: revocation refused", "node", ps.node, "err", err)
		}
		return
	}
	if m.Kind == kernel.KindRequest && !ps.limit.allow(time.Now()) {
		n.rateLimited(ps, m)
		return
	}
	if err := n.k.Receive(ps.node, m); err != nil {
		if errors.Is(err, kernel.ErrSpoofed) {
			ps.stats.spoofed.Add(1)
			n.log.Warn("p2p: dropped a frame claiming another node as its source", "node", ps.node, "source", m.Source.String())
			return
		}
		ps.stats.errors.Add(1)
		n.log.Debug("p2p: message from peer refused", "node", ps.node, "err", err)
	}
}

// rateLimited handles a request over its peer's rate limit: one that
// expects a response is answered mailbox_full at once (as a full mailbox
// would be, so its sender learns now rather than at its timeout), one
// that does not is dropped. Either way it is counted.
func (n *Node) rateLimited(ps *peerState, m *kernel.RemoteMessage) {
	ps.stats.rateLimited.Add(1)
	if m.Source.Node != ps.node {
		ps.stats.spoofed.Add(1)
		n.log.Warn("p2p: dropped a frame claiming another node as its source", "node", ps.node, "source", m.Source.String())
		return
	}
	if m.ExpectsResponse == 0 {
		n.log.Debug("p2p: request over the rate limit dropped", "node", ps.node, "target", m.Target.String())
		return
	}
	answer := &kernel.RemoteMessage{
		Kind:   kernel.KindError,
		ID:     m.ID,
		Source: m.Target,
		Target: m.Source,
		Error: &kernel.SendError{
			Kind:   kernel.ErrMailboxFull,
			Target: m.Target,
			Detail: fmt.Sprintf("node %s takes at most %v requests a second from node %s (bursts of %d)", n.node, n.cfg.InboundRate, ps.node, n.cfg.InboundBurst),
		},
	}
	f, err := pbconv.RemoteFrame(answer)
	if err == nil {
		err = n.enqueue(ps.id, ps.node, outbound{msg: answer, frame: f, size: proto.Size(f)})
	}
	if err != nil {
		n.log.Debug("p2p: rate-limit answer not sent", "node", ps.node, "err", err)
	}
}
