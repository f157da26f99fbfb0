;; Grows its memory by 16 pages and exits: a spawned child that comes and
;; goes (TestSpawnBudgetNoLeak).
(module
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32)
    (drop (memory.grow (i32.const 16)))
    (i32.const 0)))
