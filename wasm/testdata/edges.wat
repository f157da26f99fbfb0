;; Exact pointer edges against a one-page memory. init returns 0 when every
;; call answered as docs/abi.md says, else the number of the failed step.
(module
  (import "weft" "message_read" (func $message_read (param i32 i32) (result i32)))
  (import "weft" "state_set" (func $state_set (param i32 i32) (result i32)))
  (import "weft" "self_read" (func $self_read (param i32 i32) (result i32)))
  (import "weft" "last_error" (func $last_error (param i32 i32) (result i32)))
  (import "weft" "send" (func $send (param i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32)
    ;; 1: an empty range at the very end is inside memory (nothing current: length 0)
    (if (i32.ne (call $message_read (i32.const 65536) (i32.const 0)) (i32.const 0)) (then (return (i32.const 1))))
    ;; 2: one byte past the end is not
    (if (i32.ne (call $message_read (i32.const 65536) (i32.const 1)) (i32.const -1)) (then (return (i32.const 2))))
    ;; 3: the last byte is
    (if (i32.ne (call $message_read (i32.const 65535) (i32.const 1)) (i32.const 0)) (then (return (i32.const 3))))
    ;; 4: a length that wraps around 2^32 is refused
    (if (i32.ne (call $state_set (i32.const 16) (i32.const -1)) (i32.const -1)) (then (return (i32.const 4))))
    ;; 5: a negative pointer is refused
    (if (i32.ne (call $self_read (i32.const -8) (i32.const 4)) (i32.const -1)) (then (return (i32.const 5))))
    ;; 6: send with a range past the end is refused with -1 as i64
    (if (i64.ne (call $send (i32.const 65530) (i32.const 7)) (i64.const -1)) (then (return (i32.const 6))))
    ;; 7: last_error describes it: non-empty
    (if (i32.le_s (call $last_error (i32.const 0) (i32.const 256)) (i32.const 0)) (then (return (i32.const 7))))
    ;; 8: garbage at a valid range is refused
    (if (i64.ne (call $send (i32.const 0) (i32.const 3)) (i64.const -1)) (then (return (i32.const 8))))
    (i32.const 0)))
