;; A module whose start section never returns: wazero runs it while it
;; instantiates the module, before _initialize or init.
(module
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func $spin (loop $again (br $again)))
  (start $spin)
  (func (export "init") (result i32) (i32.const 0)))
