package controlapi

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

func (s *server) ListCapabilities(_ context.Context, req *connect.Request[weftv1.ListCapabilitiesRequest]) (*connect.Response[weftv1.ListCapabilitiesResponse], error) {
	id, err := parseProcess("process", req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	caps, err := s.k.CapabilitiesOf(id)
	if err != nil {
		return nil, err
	}
	out := make([]*weftv1.Capability, 0, len(caps))
	for _, c := range caps {
		out = append(out, pbconv.Capability(c))
	}
	return connect.NewResponse(&weftv1.ListCapabilitiesResponse{Capabilities: out}), nil
}

func (s *server) GrantCapability(_ context.Context, req *connect.Request[weftv1.GrantCapabilityRequest]) (*connect.Response[weftv1.GrantCapabilityResponse], error) {
	id, err := parseProcess("process", req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	c, err := pbconv.CapabilityRef(req.Msg.GetCapability())
	if err != nil {
		return nil, err
	}
	if err := s.k.Grant(c, id); err != nil {
		return nil, err
	}
	// The capability as held, signed by the node that issued it: this
	// node signs its own; one from elsewhere keeps the signature it came
	// with.
	if c.Issuer.Node == kernel.OurNode || c.Issuer.Node == s.k.NodeID() {
		sc, err := s.k.Sign(c)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&weftv1.GrantCapabilityResponse{Capability: pbconv.Capability(sc)}), nil
	}
	params, err := kernel.CanonicalParams(c.Params, s.k.Limits().MaxCapabilityParamsBytes)
	if err != nil {
		return nil, field("capability.params", err)
	}
	held, err := s.k.CapabilitiesOf(id)
	if err != nil {
		return nil, err
	}
	for _, h := range held {
		if h.Issuer == c.Issuer && h.Params == params {
			return connect.NewResponse(&weftv1.GrantCapabilityResponse{Capability: pbconv.Capability(h)}), nil
		}
	}
	return nil, fmt.Errorf("controlapi: grant %s to %s: granted, but not among the capabilities it holds", c, id)
}

func (s *server) RevokeCapability(_ context.Context, req *connect.Request[weftv1.RevokeCapabilityRequest]) (*connect.Response[weftv1.RevokeCapabilityResponse], error) {
	c, err := pbconv.CapabilityRef(req.Msg.GetCapability())
	if err != nil {
		return nil, err
	}
	if err := s.k.Revoke(c); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RevokeCapabilityResponse{}), nil
}
