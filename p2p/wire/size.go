package wire

import (
	"crypto/ed25519"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

// MaxAddressBytes is the length of the longest address on the wire,
// "NODEID@name:package:publisher" with every part as long as the kernel
// allows: a node on the wire is always a node id, never an alias.
const MaxAddressBytes = identity.NodeIDLen + 1 + kernel.MaxNameLen + 1 + kernel.MaxNameLen + 1 + kernel.MaxPublisherLen

// MaxFrameBytes is the length of the largest frame (its protobuf encoding,
// not counting the length prefix) that a message within lim can make, so
// a transport can refuse a larger message as too_large before it sends it
// and give ReadFrame a max no conforming peer with the same limits
// exceeds. Zero limits are read as the kernel's defaults
// (Limits.WithDefaults), negative ones as zero.
//
// The largest frame is one of: a request with every field at its bound
// (the body, the metadata, a blob whose mime and bytes together reach
// max_blob_bytes, split to make the longest encoding, max_message_capabilities
// capabilities and a messaging capability, each with params of
// max_capability_params_bytes, longest addresses and a 64-byte signature,
// the longest timeout a time.Duration holds and the largest id); an error
// with a detail of p2pv1.MaxErrorDetailBytes; or a revocation. The bound
// is exact: such a message encodes to exactly this many bytes, and one
// byte more in any field makes the frame longer. A sum past the largest
// int is the largest int.
func MaxFrameBytes(lim kernel.Limits) int {
	lim = lim.WithDefaults()
	nonNeg := func(v int) uint64 { return uint64(max(v, 0)) }
	return int(min(max(
		maxRequestFrame(nonNeg(lim.MaxBodyBytes), nonNeg(lim.MaxMetadataBytes), nonNeg(lim.MaxBlobBytes),
			nonNeg(lim.MaxMessageCapabilities), nonNeg(lim.MaxCapabilityParamsBytes)),
		maxErrorFrame(),
		maxRevocationFrame(nonNeg(lim.MaxCapabilityParamsBytes)),
	), math.MaxInt))
}

// Field numbers, as in wire.proto and types.proto, hold no more than one
// byte of tag each, so every tag below is one byte.
const tagBytes = 1

// field is the size of a length-delimited field of n bytes: its tag, the
// varint of n, and n; saturating.
func field(n uint64) uint64 { return add(tagBytes+uint64(protowire.SizeVarint(n)), n) }

// bytesField is field(n), or nothing for n == 0: proto3 leaves out an
// empty string or bytes.
func bytesField(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return field(n)
}

const (
	// varintField is the size of a varint field holding the largest value.
	varintField = tagBytes + 10
	// boolField is the size of a true bool field.
	boolField = tagBytes + 1
	// durationField is the size of the longest google.protobuf.Duration a
	// time.Duration makes: seconds 9223372036 and nanos 854775807, five
	// bytes of varint each.
	durationField = tagBytes + 1 + (tagBytes + 5) + (tagBytes + 5)
	// addressField is the size of an address field at MaxAddressBytes.
	addressField = tagBytes + 2 + MaxAddressBytes
)

// capabilityField is the size of a Capability field with params of p
// bytes.
func capabilityField(p uint64) uint64 {
	return field(add(addressField+tagBytes+1+ed25519.SignatureSize, bytesField(p)))
}

func maxRequestFrame(body, metadata, blob, ncaps, params uint64) uint64 {
	request := uint64(boolField + durationField)
	request = add(request, bytesField(body))
	request = add(request, bytesField(metadata))
	request = add(request, mul(ncaps, capabilityField(params)))
	message := add(varintField+2*addressField, field(request))
	message = add(message, field(maxBlob(blob)))
	delivery := add(field(message), capabilityField(params))
	return field(delivery)
}

// maxBlob is the size of the longest encoding of a Blob whose mime and
// bytes together hold total bytes. Two fields cost two length prefixes, and
// a prefix is longer for a longer field, so for each length of the mime's
// prefix the best mime is the shortest with that length.
func maxBlob(total uint64) uint64 {
	best := bytesField(total) // all bytes, or all mime
	for shortest := uint64(1); shortest <= total && shortest != 0; shortest <<= 7 {
		best = max(best, bytesField(shortest)+bytesField(total-shortest))
	}
	return best
}

func maxErrorFrame() uint64 {
	sendError := uint64(tagBytes+1) + addressField + field(p2pv1.MaxErrorDetailBytes)
	message := varintField + 2*addressField + field(sendError)
	return field(field(message))
}

func maxRevocationFrame(params uint64) uint64 {
	return field(capabilityField(params))
}

// add and mul saturate at the largest uint64, which MaxFrameBytes then
// caps to the largest int.
func add(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}

func mul(a, b uint64) uint64 {
	if a != 0 && b > math.MaxUint64/a {
		return math.MaxUint64
	}
	return a * b
}
