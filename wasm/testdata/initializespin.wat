;; A WASI reactor whose _initialize never returns.
(module
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "_initialize") (loop $again (br $again)))
  (func (export "init") (result i32) (i32.const 0)))
