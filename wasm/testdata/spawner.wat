;; Spawns children on request. A request's body is "N PATH": N (decimal)
;; children of module PATH of its own package, with fresh names, on_exit
;; none, one after another. It answers with, for each, spawn's result (an
;; i32) followed, when that is the length of the child's id, by the id.
;; N is at most 500: past it, it exits with 2.
;; The memory tests and weftd's end-to-end test of the budgets run it.
(module
  (import "weft" "await" (func $await (result i32)))
  (import "weft" "message_read" (func $message_read (param i32 i32) (result i32)))
  (import "weft" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "weft" "respond" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  ;; Layout: the spawn spec at 1024, the response at 8192 (its body from
  ;; 8200), the message at 32768.
  (func (export "init") (result i32)
    (local $len i32) (local $p i32) (local $end i32) (local $n i32)
    (local $path i32) (local $plen i32) (local $spec i32) (local $rc i32)
    (local $out i32)
    (loop $serve
      (local.set $len (call $await))
      (if (i32.lt_s (local.get $len) (i32.const 0))
        (then (return (i32.const 0))))
      (if (i32.gt_s (local.get $len) (i32.const 32768))
        (then (return (i32.const 1))))
      (drop (call $message_read (i32.const 32768) (local.get $len)))
      ;; Skip the fixed 20 bytes, the source and the target: the body.
      (local.set $p (i32.add (i32.const 32788)
        (i32.add (i32.const 4) (i32.load (i32.const 32788)))))
      (local.set $p (i32.add (local.get $p)
        (i32.add (i32.const 4) (i32.load (local.get $p)))))
      (local.set $end (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      ;; N: digits up to a space.
      (local.set $n (i32.const 0))
      (block $digits
        (loop $digit
          (br_if $digits (i32.ge_u (local.get $p) (local.get $end)))
          (br_if $digits (i32.eq (i32.load8_u (local.get $p)) (i32.const 32)))
          (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
            (i32.sub (i32.load8_u (local.get $p)) (i32.const 48))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $digit)))
      (if (i32.gt_u (local.get $n) (i32.const 500))
        (then (return (i32.const 2))))
      (local.set $path (i32.add (local.get $p) (i32.const 1)))
      (local.set $plen (i32.sub (local.get $end) (local.get $path)))
      ;; The spec: name "", the path, on_exit, public, reserved 0, no caps.
      (i32.store (i32.const 1024) (i32.const 0))
      (i32.store (i32.const 1028) (local.get $plen))
      (memory.copy (i32.const 1032) (local.get $path) (local.get $plen))
      (i64.store (i32.add (i32.const 1032) (local.get $plen)) (i64.const 0))
      (local.set $spec (i32.add (i32.const 16) (local.get $plen)))
      (local.set $out (i32.const 8200))
      (block $done
        (loop $child
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $rc (call $spawn (i32.const 1024) (local.get $spec)
            (i32.add (local.get $out) (i32.const 4)) (i32.const 256)))
          (i32.store (local.get $out) (local.get $rc))
          (local.set $out (i32.add (local.get $out) (i32.const 4)))
          (if (i32.gt_s (local.get $rc) (i32.const 0))
            (then (local.set $out (i32.add (local.get $out) (local.get $rc)))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $child)))
      ;; The response: flags and reserved 0, the body, no metadata, no caps.
      (i32.store (i32.const 8192) (i32.const 0))
      (i32.store (i32.const 8196) (i32.sub (local.get $out) (i32.const 8200)))
      (i64.store (local.get $out) (i64.const 0))
      (drop (call $respond (i32.const 8192) (i32.sub (i32.add (local.get $out) (i32.const 8)) (i32.const 8192))))
      (br $serve))
    (i32.const 0)))
