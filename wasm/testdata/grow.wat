;; Grows its memory a page at a time until memory.grow fails (returns -1):
;; at memory_per_process or at a guest memory budget. It then keeps that
;; memory and answers every request with its size in pages (a u32 body).
;; The memory tests and weftd's end-to-end test of the budgets run it.
(module
  (import "weft" "await" (func $await (result i32)))
  (import "weft" "respond" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    ;; The response, at 0: flags and reserved 0, a body of 4 bytes (the
    ;; pages), no metadata, no capabilities.
    (i64.store (i32.const 0) (i64.const 0x0000000400000000))
    (i32.store (i32.const 8) (memory.size))
    (i64.store (i32.const 12) (i64.const 0))
    (loop $serve
      (if (i32.lt_s (call $await) (i32.const 0))
        (then (return (i32.const 0))))
      (drop (call $respond (i32.const 0) (i32.const 20)))
      (br $serve))
    (i32.const 0)))
