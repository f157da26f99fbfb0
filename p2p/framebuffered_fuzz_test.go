package p2p

import (
	"bufio"
	"testing"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p/wire"
)

// pieces delivers data a piece at a time, of the lengths cuts gives in
// turn (a zero taken as one), as a stream delivers a sender's writes, and
// counts the reads that reached it.
type pieces struct {
	data, cuts []byte
	reads      int
}

func (p *pieces) Read(b []byte) (int, error) {
	p.reads++
	if len(p.data) == 0 {
		return 0, errEndOfFuzz
	}
	n := len(p.data)
	if len(p.cuts) > 0 {
		n = max(int(p.cuts[0]), 1)
		p.cuts = p.cuts[1:]
	}
	n = min(n, len(b), len(p.data))
	copy(b, p.data[:n])
	p.data = p.data[n:]
	return n, nil
}

type fuzzEnd struct{}

func (fuzzEnd) Error() string { return "end of the fuzz input" }

var errEndOfFuzz error = fuzzEnd{}

// FuzzFrameBuffered reads arbitrary bytes, arriving in arbitrary pieces,
// as handleStream reads a stream: a frame at a time from a bufio.Reader of
// inboundBuffer. Whenever frameBuffered says the next frame waits whole
// in the buffer (and handleStream so holds back the acknowledgements owed
// until it is read), reading it, or failing to, must not read the stream
// again: a read that waited there would hold the acknowledgements while
// the sender waits for them. Seeds are in testdata/fuzz/FuzzFrameBuffered.
func FuzzFrameBuffered(f *testing.F) {
	max := maxFrameBytes(kernel.DefaultLimits())
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		src := &pieces{data: data, cuts: cuts}
		in := bufio.NewReaderSize(src, inboundBuffer)
		for range 1000 {
			if frameBuffered(in) {
				before := src.reads
				_, err := wire.ReadFrame(in, max)
				if src.reads != before {
					t.Fatalf("frameBuffered said a whole frame waited, and reading it read the stream %d more times (err %v)", src.reads-before, err)
				}
				if err != nil {
					return
				}
				continue
			}
			if _, err := wire.ReadFrame(in, max); err != nil {
				return
			}
		}
	})
}
