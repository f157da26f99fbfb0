// Tries Extism's HTTP host function through its own kernel protocol.
#include <stdint.h>
#include <string.h>

#define EXTISM(n) __attribute__((import_module("extism:host/env"), import_name(n)))
EXTISM("alloc") uint64_t x_alloc(uint64_t n);
EXTISM("store_u8") void x_store_u8(uint64_t off, uint32_t v);
EXTISM("http_request") uint64_t x_http_request(uint64_t req, uint64_t body);

__attribute__((export_name("weft_abi_v1"))) void weft_abi_v1(void) {}

__attribute__((export_name("init"))) int32_t init(void) {
	const char *req = "{\"url\":\"http://127.0.0.1:1/\",\"method\":\"GET\"}";
	uint64_t n = strlen(req);
	uint64_t off = x_alloc(n);
	for (uint64_t i = 0; i < n; i++) x_store_u8(off + i, (uint8_t)req[i]);
	x_http_request(off, 0);
	return 0;
}
