package pbconv_test

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// FuzzRemoteFrame feeds arbitrary bytes, as a frame from another node
// would arrive, through FromRemoteFrame: it must never panic and refuse
// only with a *FieldError, and what it accepts must go back through
// RemoteFrame (or RevocationFrame) without an error and come out of
// FromRemoteFrame the same again, frame and all. The seed corpus is in
// testdata/fuzz/FuzzRemoteFrame: valid frames of every kind (with real
// node ids, which random bytes would never hit) and frames one rule off.
func FuzzRemoteFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in := new(p2pv1.Frame)
		if err := proto.Unmarshal(data, in); err != nil {
			return
		}
		m, revoked, err := pbconv.FromRemoteFrame(in)
		if err != nil {
			var fe *pbconv.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Err == nil {
				t.Fatalf("FromRemoteFrame refused %v with %v (%T), not a *pbconv.FieldError", in, err, err)
			}
			if m != nil || revoked != nil {
				t.Fatalf("FromRemoteFrame returned %v, %v with the error %v", m, revoked, err)
			}
			return
		}
		if (m == nil) == (revoked == nil) {
			t.Fatalf("FromRemoteFrame(%v) = %v, %v: want exactly one", in, m, revoked)
		}
		if m != nil && m.ExpectsResponse < 0 {
			t.Fatalf("FromRemoteFrame(%v) accepted a negative timeout %s", in, m.ExpectsResponse)
		}
		f1 := frameOf(t, m, revoked)
		b, err := proto.Marshal(f1)
		if err != nil {
			t.Fatalf("marshal %v: %v", f1, err)
		}
		again := new(p2pv1.Frame)
		if err := proto.Unmarshal(b, again); err != nil {
			t.Fatalf("unmarshal what RemoteFrame made: %v", err)
		}
		m2, revoked2, err := pbconv.FromRemoteFrame(again)
		if err != nil {
			t.Fatalf("FromRemoteFrame refused what RemoteFrame made of %v: %v", in, err)
		}
		if !reflect.DeepEqual(m2, m) || !reflect.DeepEqual(revoked2, revoked) {
			t.Fatalf("second round of %v\n= %#v, %#v\nwant %#v, %#v", in, m2, revoked2, m, revoked)
		}
		if f2 := frameOf(t, m2, revoked2); !proto.Equal(f2, f1) {
			t.Fatalf("second frame of %v\n= %v\nwant %v", in, f2, f1)
		}
	})
}

// frameOf is the frame of what FromRemoteFrame returned.
func frameOf(t *testing.T, m *kernel.RemoteMessage, revoked *kernel.SignedCapability) *p2pv1.Frame {
	t.Helper()
	var f *p2pv1.Frame
	var err error
	if m != nil {
		f, err = pbconv.RemoteFrame(m)
	} else {
		f, err = pbconv.RevocationFrame(*revoked)
	}
	if err != nil {
		t.Fatalf("what FromRemoteFrame accepted does not convert back: %v", err)
	}
	return f
}
