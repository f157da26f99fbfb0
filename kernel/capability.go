package kernel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Capability is {issuer, params}: the right the issuer grants to whoever
// holds it. Params is JSON; the kernel keeps it in canonical form
// (CanonicalParams), so two capabilities are the same exactly when their
// issuers and canonical params are equal.
type Capability struct {
	Issuer Address
	Params string
}

// SignedCapability is a capability with the issuing node's Ed25519
// signature over its canonical encoding (EncodeCapability). Signed
// capabilities are what crosses the node's edges: disk, network, API.
type SignedCapability struct {
	Capability
	Signature []byte
}

// Built-in capability params.
const (
	MessagingParams = `"messaging"` // issued by a process: you may message it
	NetworkParams   = `"network"`   // issued by kernel:sys:weft: you may send and receive across nodes
)

// MaxCapabilityParamsDepth bounds nesting in capability params.
const MaxCapabilityParamsDepth = 32

func (c Capability) String() string { return c.Issuer.String() + " " + c.Params }

// Keyring signs as this node and verifies signatures by any node. The
// kernel signs every capability it mints and verifies every signed
// capability that enters the node.
type Keyring interface {
	// NodeID is this node's id.
	NodeID() string
	// Sign signs msg with this node's Ed25519 key.
	Sign(msg []byte) []byte
	// Verify reports whether sig is a valid signature of msg by the key
	// that node names; false for a node id it cannot resolve to a key.
	Verify(node string, msg, sig []byte) bool
}

// ErrForged is wrapped by every refusal of a signed capability whose
// signature does not check out.
var ErrForged = errors.New("capability signature does not verify")

const capabilityDomain = "weft-capability-v1\x00"

// EncodeCapability is the canonical encoding a capability's signature
// covers (docs/capabilities.md):
//
//	"weft-capability-v1" 0x00
//	uint32 big-endian length of issuer, issuer (node@name:package:publisher, node never "our")
//	uint32 big-endian length of params, params (canonical JSON)
func EncodeCapability(c Capability) []byte {
	issuer := c.Issuer.String()
	b := make([]byte, 0, len(capabilityDomain)+8+len(issuer)+len(c.Params))
	b = append(b, capabilityDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(issuer)))
	b = append(b, issuer...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Params)))
	b = append(b, c.Params...)
	return b
}

// CanonicalParams returns the canonical form of JSON text: no insignificant
// white space, object members sorted by key (byte order), strings with only
// the escapes JSON requires (", \, control characters) and no HTML escaping,
// numbers as written. Duplicate keys, invalid UTF-8, trailing data and
// nesting deeper than MaxCapabilityParamsDepth are refused.
func CanonicalParams(params string, maxBytes int) (string, error) {
	if maxBytes > 0 && len(params) > maxBytes {
		return "", fmt.Errorf("capability params are %d bytes, at most %d allowed", len(params), maxBytes)
	}
	if !utf8.ValidString(params) {
		return "", errors.New("capability params are not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(params))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(params))
	if err := canonValue(dec, &out, 0); err != nil {
		return "", fmt.Errorf("capability params are not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("capability params are not valid JSON: data after the value")
	}
	return out.String(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return canonToken(dec, out, tok, depth)
}

func canonToken(dec *json.Decoder, out *bytes.Buffer, tok json.Token, depth int) error {
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxCapabilityParamsDepth {
			return fmt.Errorf("nested deeper than %d", MaxCapabilityParamsDepth)
		}
		switch t {
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			out.WriteByte(']')
		case '{':
			type member struct {
				key string
				val []byte
			}
			var members []member
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := kt.(string)
				if !ok {
					return errors.New("object key is not a string")
				}
				var v bytes.Buffer
				if err := canonValue(dec, &v, depth+1); err != nil {
					return err
				}
				members = append(members, member{key, v.Bytes()})
			}
			if _, err := dec.Token(); err != nil { // '}'
				return err
			}
			slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
			out.WriteByte('{')
			for i, m := range members {
				if i > 0 {
					if members[i-1].key == m.key {
						return fmt.Errorf("duplicate key %q", m.key)
					}
					out.WriteByte(',')
				}
				writeJSONString(out, m.key)
				out.WriteByte(':')
				out.Write(m.val)
			}
			out.WriteByte('}')
		default:
			return fmt.Errorf("unexpected %q", rune(t))
		}
	case string:
		writeJSONString(out, t)
	case json.Number:
		out.WriteString(string(t))
	case bool:
		if t {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %v", tok)
	}
	return nil
}

// QuoteJSON returns s as a JSON string in the form CanonicalParams writes
// strings, for callers that build canonical params themselves (the
// store's capabilities). s must be valid UTF-8.
func QuoteJSON(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			var b bytes.Buffer
			writeJSONString(&b, s)
			return b.String()
		}
	}
	return `"` + s + `"`
}

func writeJSONString(out *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		case c < 0x20:
			switch c {
			case '\n':
				out.WriteString(`\n`)
			case '\r':
				out.WriteString(`\r`)
			case '\t':
				out.WriteString(`\t`)
			case '\b':
				out.WriteString(`\b`)
			case '\f':
				out.WriteString(`\f`)
			default:
				out.WriteString(`\u00`)
				out.WriteByte(hex[c>>4])
				out.WriteByte(hex[c&0xf])
			}
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
}
