;; A guest written by hand from docs/abi.md alone, as a newcomer would
;; (wasm/abidoc_test.go). It does what the first byte of a request's body
;; says:
;;
;;   'f' REQUEST   send REQUEST. When send fails, answer its code at once;
;;                 when it succeeds, answer nothing now.
;;   's' REQUEST   send_and_await REQUEST, then answer its code and the
;;                 message that is current afterwards.
;;   'c'           answer the code the last respond returned.
;;   'o' STOREOP   perform STOREOP now and answer its code.
;;   'p' STOREOP   keep STOREOP, to perform when await returns
;;                 WEFT_ESTOPPED (and then again, to see its code).
;;   'h'           answer nothing.
;;
;; A response or an error that comes back through await is answered with
;; respond, so the test sees which request respond answers then.
;;
;; Every answer's body is: i32 code, u8 kind and u8 error kind of the
;; current message, then the current message's body.
(module
  (import "weft" "await" (func $await (result i32)))
  (import "weft" "message_read" (func $message_read (param i32 i32) (result i32)))
  (import "weft" "send" (func $send (param i32 i32) (result i64)))
  (import "weft" "send_and_await" (func $send_and_await (param i32 i32) (result i32)))
  (import "weft" "respond" (func $respond (param i32 i32) (result i32)))
  (import "weft" "store" (func $store (param i32 i32 i32 i32) (result i32)))
  (import "weft" "state_set" (func $state_set (param i32 i32) (result i32)))
  (memory (export "memory") 8)
  (func (export "weft_abi_v1"))

  ;; Where things live: the current message (MSG, 128 KiB), the answer
  ;; being built (RESP), the kept store op (STOP) and store results (OUT).
  (global $MSG i32 (i32.const 0x10000))
  (global $MSGCAP i32 (i32.const 0x20000))
  (global $RESP i32 (i32.const 0x40000))
  (global $STOP i32 (i32.const 0x60000))
  (global $OUT i32 (i32.const 0x70000))

  (global $last (mut i32) (i32.const 0)) ;; what the last respond returned
  (global $stoplen (mut i32) (i32.const 0))

  ;; read copies the current message to MSG.
  (func $read
    (if (i32.gt_u (call $message_read (global.get $MSG) (global.get $MSGCAP)) (global.get $MSGCAP))
      (then unreachable)))

  ;; body returns the address of the current message's body field (its
  ;; u32 length; the bytes follow): after kind, flags, error kind,
  ;; reserved, id and expects response (20 bytes), str source, str target.
  (func $body (result i32)
    (local $off i32)
    (local.set $off (i32.add (i32.const 24) (i32.load (i32.add (global.get $MSG) (i32.const 20)))))
    (local.set $off (i32.add (local.get $off)
      (i32.add (i32.const 4) (i32.load (i32.add (global.get $MSG) (local.get $off))))))
    (i32.add (global.get $MSG) (local.get $off)))

  ;; reply answers with code and the current message (see above) and
  ;; keeps what respond returned.
  (func $reply (param $code i32)
    (local $bp i32) (local $blen i32) (local $r i32)
    (local.set $bp (call $body))
    (local.set $blen (i32.load (local.get $bp)))
    (local.set $r (global.get $RESP))
    (i32.store (local.get $r) (i32.const 0))                                  ;; flags, reserved
    (i32.store (i32.add (local.get $r) (i32.const 4)) (i32.add (local.get $blen) (i32.const 6)))
    (i32.store (i32.add (local.get $r) (i32.const 8)) (local.get $code))
    (i32.store8 (i32.add (local.get $r) (i32.const 12)) (i32.load8_u (global.get $MSG)))
    (i32.store8 (i32.add (local.get $r) (i32.const 13)) (i32.load8_u (i32.add (global.get $MSG) (i32.const 2))))
    (memory.copy (i32.add (local.get $r) (i32.const 14)) (i32.add (local.get $bp) (i32.const 4)) (local.get $blen))
    (local.set $r (i32.add (local.get $r) (i32.add (i32.const 14) (local.get $blen))))
    (i64.store (local.get $r) (i64.const 0))                                  ;; metadata "", no caps
    (global.set $last (call $respond (global.get $RESP)
      (i32.sub (i32.add (local.get $r) (i32.const 8)) (global.get $RESP)))))

  (func (export "init") (result i32)
    (local $bp i32) (local $blen i32) (local $cmd i32) (local $arg i32) (local $alen i32) (local $id i64)
    (loop $next
      (if (i32.lt_s (call $await) (i32.const 0))
        (then
          ;; WEFT_ESTOPPED: the kept store op, then its code as the
          ;; process's state (to see whether anything still lands).
          (if (global.get $stoplen)
            (then
              (i32.store (global.get $OUT)
                (call $store (global.get $STOP) (global.get $stoplen) (i32.add (global.get $OUT) (i32.const 16)) (i32.const 4096)))
              (drop (call $state_set (global.get $OUT) (i32.const 4)))))
          (return (i32.const 0))))
      (call $read)
      (if (i32.ne (i32.load8_u (global.get $MSG)) (i32.const 1))
        (then (call $reply (i32.const 0)) (br $next)))
      (local.set $bp (call $body))
      (local.set $blen (i32.load (local.get $bp)))
      (if (i32.eqz (local.get $blen))
        (then (call $reply (i32.const 0)) (br $next)))
      (local.set $cmd (i32.load8_u (i32.add (local.get $bp) (i32.const 4))))
      (local.set $arg (i32.add (local.get $bp) (i32.const 5)))
      (local.set $alen (i32.sub (local.get $blen) (i32.const 1)))
      (block $done
        (if (i32.eq (local.get $cmd) (i32.const 0x66)) ;; 'f'
          (then
            (local.set $id (call $send (local.get $arg) (local.get $alen)))
            (if (i64.lt_s (local.get $id) (i64.const 0))
              (then (call $reply (i32.wrap_i64 (local.get $id)))))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x73)) ;; 's'
          (then
            (local.set $cmd (call $send_and_await (local.get $arg) (local.get $alen)))
            (call $read)
            (call $reply (local.get $cmd))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x63)) ;; 'c'
          (then (call $reply (global.get $last)) (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x6f)) ;; 'o'
          (then
            (call $reply (call $store (local.get $arg) (local.get $alen) (global.get $OUT) (i32.const 4096)))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x70)) ;; 'p'
          (then
            (memory.copy (global.get $STOP) (local.get $arg) (local.get $alen))
            (global.set $stoplen (local.get $alen))
            (call $reply (i32.const 0))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x68)) ;; 'h'
          (then (br $done)))
        (call $reply (i32.const 0)))
      (br $next))
    (i32.const 0)))
