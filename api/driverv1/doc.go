// Package driverv1 owns the driver protocol's generated code: the
// messages and the grpc-go stubs of api/proto/weft/driver/v1/driver.proto
// (run `make generate`), which weftd and native drivers speak over
// go-plugin. It is apart from api/weftv1 so that the control API's types
// pull in no gRPC.
package driverv1
