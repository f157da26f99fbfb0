package driver

import "github.com/weftos/weft/api/weftv1"

// MessagingParams are the params of a messaging capability, in the
// canonical form the node gives every capability: its holder may message
// the capability's issuer.
const MessagingParams = `"messaging"`

// Messaging is the messaging capability issued by address: attached to a
// message, it lets the receiver message address. A driver attaches its
// own (address: Start.Address) so that a target may message it back; a
// process attaches its own to a request so that a driver may message it
// later.
func Messaging(address string) *weftv1.Capability {
	return &weftv1.Capability{Issuer: address, Params: MessagingParams}
}

// IsMessaging reports whether c is the messaging capability issued by
// address.
func IsMessaging(c *weftv1.Capability, address string) bool {
	return c.GetIssuer() == address && c.GetParams() == MessagingParams
}
