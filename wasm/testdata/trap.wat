(module
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32) unreachable))
