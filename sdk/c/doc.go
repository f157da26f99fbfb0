// Package ctest holds the tests of the C SDK, the single header weft.h
// beside it: they build C guests that include the header with clang
// ($CLANG, from `make tools`) and run them in wazero against a fake
// "weft" host module. They also run procstore's C store probe
// (procstore/testdata/cprobe.c), which drives the header's store
// functions, and testdata/fanout.c, which answers requests later
// (ABI version 2), on a real node. The package has no Go API.
package ctest
