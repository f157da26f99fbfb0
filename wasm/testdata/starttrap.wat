;; A module whose start section traps, after its data segment has been
;; written into its memory.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "written before the start function")
  (func (export "weft_abi_v1"))
  (func $trap unreachable)
  (start $trap)
  (func (export "init") (result i32) (i32.const 0)))
