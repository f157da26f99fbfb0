// Package identity owns the node's Ed25519 key and the node id derived from
// it: loading and creating the key file, signing and verifying with it, and
// converting between an Ed25519 public key and its node id, so that an
// address alone is enough to check what a node signed.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidNodeID is wrapped by every error PublicKeyFromNodeID returns.
var ErrInvalidNodeID = errors.New("invalid node id")

// A node id is a libp2p peer id in its CIDv1 form, written in multibase
// base36 lowercase. The bytes under the base36 are
//
//	0x01                CID version 1
//	0x72                multicodec libp2p-key
//	0x00 0x24           multihash: identity function, 36-byte digest
//	0x08 0x01 0x12 0x20 libp2p protobuf PublicKey{Type: Ed25519, Data: 32 bytes}
//	key                 the 32-byte Ed25519 public key
const (
	base36Prefix = 'k'
	base36Digits = "0123456789abcdefghijklmnopqrstuvwxyz"

	cidVersion1       = 0x01
	codecLibp2pKey    = 0x72
	multihashIdentity = 0x00
	keyTypeEd25519    = 0x01

	// headerLen is the length of everything before the key.
	headerLen = 8
	// idBytesLen is the length of the CID bytes of a node id.
	idBytesLen = headerLen + ed25519.PublicKeySize
	// maxIDLen bounds what PublicKeyFromNodeID decodes.
	maxIDLen = 2 * NodeIDLen
)

// NodeIDLen is the length of every node id, prefix included. The CID bytes
// of any Ed25519 key lie between header·00…00 and header·ff…ff, and no power
// of 36 falls in that range, so the length never varies.
const NodeIDLen = 62

// header is the fixed part of a node id's CID bytes, before the key.
var header = [headerLen]byte{
	cidVersion1, codecLibp2pKey,
	multihashIdentity, 4 + ed25519.PublicKeySize,
	0x08, keyTypeEd25519, 0x12, ed25519.PublicKeySize,
}

// NodeID returns the node id of pub: its libp2p peer id as a CIDv1 with
// codec libp2p-key, in multibase base36 lowercase ("k…"). It panics if pub
// is not ed25519.PublicKeySize bytes long, as crypto/ed25519 does.
func NodeID(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("identity: bad Ed25519 public key length: %d", len(pub)))
	}
	var b [idBytesLen]byte
	copy(b[:], header[:])
	copy(b[headerLen:], pub)
	return string(base36Prefix) + base36Encode(b[:])
}

// PublicKeyFromNodeID returns the Ed25519 public key a node id names. It is
// strict: it accepts exactly the strings NodeID produces, and its errors
// wrap ErrInvalidNodeID and say what is wrong.
func PublicKeyFromNodeID(id string) (ed25519.PublicKey, error) {
	if id == "" {
		return nil, invalid(id, "empty")
	}
	if id[0] != base36Prefix {
		return nil, invalid(id, fmt.Sprintf("multibase prefix %q, want %q (base36 lowercase)", id[:1], string(base36Prefix)))
	}
	digits := id[1:]
	for i := 0; i < len(digits); i++ {
		if digitValue(digits[i]) < 0 {
			return nil, invalid(id, fmt.Sprintf("bad base36 digit %q at offset %d", digits[i:i+1], i+1))
		}
	}
	// Checked before decoding, so the quadratic decoder never meets a long
	// input; the bound leaves room to decode other peer ids far enough to
	// say what they are.
	if len(id) > maxIDLen {
		return nil, invalid(id, fmt.Sprintf("wrong length: %d characters, want %d", len(id), NodeIDLen))
	}
	b := base36Decode(digits)
	switch {
	case len(b) < headerLen:
		return nil, invalid(id, fmt.Sprintf("wrong length: %d bytes, want %d", len(b), idBytesLen))
	case b[0] != cidVersion1:
		return nil, invalid(id, fmt.Sprintf("CID version %d, want 1", b[0]))
	case b[1] != codecLibp2pKey:
		return nil, invalid(id, fmt.Sprintf("CID codec 0x%02x, want libp2p-key (0x72)", b[1]))
	case b[2] != multihashIdentity:
		return nil, invalid(id, fmt.Sprintf("multihash code 0x%02x, not an identity multihash (0x00)", b[2]))
	case int(b[3]) != len(b)-4:
		return nil, invalid(id, fmt.Sprintf("wrong length: identity multihash says %d bytes, holds %d", b[3], len(b)-4))
	case b[4] != 0x08 || b[6] != 0x12:
		return nil, invalid(id, "not a libp2p public key")
	case b[5] != keyTypeEd25519:
		return nil, invalid(id, fmt.Sprintf("key type %d, not an Ed25519 key (1)", b[5]))
	case int(b[7]) != len(b)-headerLen:
		return nil, invalid(id, fmt.Sprintf("wrong length: key says %d bytes, holds %d", b[7], len(b)-headerLen))
	case len(b) != idBytesLen:
		return nil, invalid(id, fmt.Sprintf("wrong length: Ed25519 key of %d bytes, want %d", len(b)-headerLen, ed25519.PublicKeySize))
	}
	// The checks above leave one header and one length; NodeID of the key
	// is id itself (the fuzz test holds this).
	return ed25519.PublicKey(bytes.Clone(b[headerLen:])), nil
}

// invalid returns an error about id, quoted and cut short enough to log.
func invalid(id, problem string) error {
	const maxQuoted = 100
	n := min(len(id), maxQuoted)
	for len(strconv.Quote(id[:n])) > maxQuoted {
		n--
	}
	q := strconv.Quote(id[:n])
	if n < len(id) {
		q += "…"
	}
	return fmt.Errorf("identity: %w %s: %s", ErrInvalidNodeID, q, problem)
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 10
	}
	return -1
}

// base36Encode writes b as a big-endian number in base36, one '0' for each
// leading zero byte, as multibase base36 does.
func base36Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// Each byte needs at most log(256)/log(36) < 1.55 digits.
	out := make([]byte, 0, zeros+len(b)*155/100+1)
	num := bytes.Clone(b[zeros:])
	for len(num) > 0 {
		rem := 0
		n := 0
		for _, d := range num {
			acc := rem<<8 | int(d)
			q := acc / 36
			rem = acc % 36
			if n > 0 || q > 0 {
				num[n] = byte(q)
				n++
			}
		}
		num = num[:n]
		out = append(out, base36Digits[rem])
	}
	for range zeros {
		out = append(out, '0')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// base36Decode is the inverse of base36Encode. Every byte of s must be a
// base36 digit.
func base36Decode(s string) []byte {
	zeros := 0
	for zeros < len(s) && s[zeros] == '0' {
		zeros++
	}
	// Little-endian bytes of the number so far.
	var num []byte
	for i := zeros; i < len(s); i++ {
		carry := digitValue(s[i])
		for j := range num {
			acc := int(num[j])*36 + carry
			num[j] = byte(acc)
			carry = acc >> 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(num))
	for i, d := range num {
		out[len(out)-1-i] = d
	}
	return out
}
