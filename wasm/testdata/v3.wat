(module
  (memory (export "memory") 1)
  (func (export "weft_abi_v3"))
  (func (export "init") (result i32) (i32.const 0)))
