;; A guest of ABI version 2 written by hand from docs/abi.md alone
;; (wasm/abidoc_test.go): it answers requests later, with defer and
;; respond_deferred. It declares version 2 only. It does what the first
;; byte of a request's body says:
;;
;;   'd'           defer the request and keep its token. Then, as the page
;;                 says they fail, defer again (its code is kept for 'a')
;;                 and respond (its code is kept for 'c'). When the first
;;                 defer fails, answer its code at once instead.
;;   'r' BODY      answer the kept token's request with BODY
;;                 (respond_deferred), then answer this request with the
;;                 code respond_deferred returned.
;;   't' TOKEN BODY  the same with TOKEN (an i64) instead of the kept one.
;;   'k'           answer with the kept token (as the code: it is small).
;;   'a'           answer the code of the second defer of the last 'd'.
;;   'c'           answer the code the last respond returned.
;;   'f' REQUEST   defer the request, keep its token, write the token into
;;                 REQUEST's context and send REQUEST (its context must be
;;                 8 bytes and it must attach no capabilities: the context
;;                 is then its last 12 bytes but 4). When send fails, answer
;;                 the deferred request with the code (4 bytes) as its body.
;;
;; A response or an error that comes back through await (the answer to
;; an 'f') is answered on: its context holds a token, and the deferred
;; request gets the answer's body (respond_deferred). Then the guest
;; responds, and keeps respond's code for 'c': the request being handled
;; is the deferred one, which respond no longer sees.
;;
;; Every answer's body is: i32 code, u8 kind and u8 error kind of the
;; current message, then the current message's body.
(module
  (import "weft" "await" (func $await (result i32)))
  (import "weft" "message_read" (func $message_read (param i32 i32) (result i32)))
  (import "weft" "send" (func $send (param i32 i32) (result i64)))
  (import "weft" "respond" (func $respond (param i32 i32) (result i32)))
  (import "weft" "defer" (func $defer (result i64)))
  (import "weft" "respond_deferred" (func $respond_deferred (param i64 i32 i32) (result i32)))
  (memory (export "memory") 8)
  (func (export "weft_abi_v2"))

  ;; The current message (MSG, 128 KiB), the answer being built (RESP)
  ;; and the response respond_deferred sends (LATER).
  (global $MSG i32 (i32.const 0x10000))
  (global $MSGCAP i32 (i32.const 0x20000))
  (global $RESP i32 (i32.const 0x40000))
  (global $LATER i32 (i32.const 0x60000))

  (global $tok (mut i64) (i64.const 0))   ;; the kept token
  (global $again (mut i32) (i32.const 0)) ;; the second defer's code
  (global $last (mut i32) (i32.const 0))  ;; what the last respond returned

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

  ;; context returns the address of the current message's context field
  ;; (its u32 length): after body, then str metadata.
  (func $context (result i32)
    (local $p i32)
    (local.set $p (call $body))
    (local.set $p (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))
    (i32.add (local.get $p) (i32.add (i32.const 4) (i32.load (local.get $p)))))

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

  ;; later answers the request token stands for with the response whose
  ;; body is [p, p+n), and returns respond_deferred's code.
  (func $later (param $token i64) (param $p i32) (param $n i32) (result i32)
    (local $r i32)
    (local.set $r (global.get $LATER))
    (i32.store (local.get $r) (i32.const 0))                                  ;; flags, reserved
    (i32.store (i32.add (local.get $r) (i32.const 4)) (local.get $n))
    (memory.copy (i32.add (local.get $r) (i32.const 8)) (local.get $p) (local.get $n))
    (local.set $r (i32.add (local.get $r) (i32.add (i32.const 8) (local.get $n))))
    (i64.store (local.get $r) (i64.const 0))                                  ;; metadata "", no caps
    (call $respond_deferred (local.get $token) (global.get $LATER)
      (i32.sub (i32.add (local.get $r) (i32.const 8)) (global.get $LATER))))

  ;; take defers the request being handled and keeps its token; when
  ;; defer fails it answers the code at once and returns 0.
  (func $take (result i32)
    (local $t i64)
    (local.set $t (call $defer))
    (if (i64.lt_s (local.get $t) (i64.const 0))
      (then
        (global.set $again (i32.wrap_i64 (local.get $t)))
        (call $reply (i32.wrap_i64 (local.get $t)))
        (return (i32.const 0))))
    (global.set $tok (local.get $t))
    (i32.const 1))

  (func (export "init") (result i32)
    (local $bp i32) (local $blen i32) (local $cmd i32) (local $arg i32) (local $alen i32)
    (local $id i64) (local $cp i32)
    (loop $next
      (if (i32.lt_s (call $await) (i32.const 0))
        (then (return (i32.const 0))))   ;; WEFT_ESTOPPED: return at once
      (call $read)
      (local.set $bp (call $body))
      (local.set $blen (i32.load (local.get $bp)))
      (if (i32.ne (i32.load8_u (global.get $MSG)) (i32.const 1))
        (then
          ;; An answer: its context holds the token of the request to
          ;; answer with its body.
          (local.set $cp (call $context))
          (if (i32.eq (i32.load (local.get $cp)) (i32.const 8))
            (then (drop (call $later (i64.load (i32.add (local.get $cp) (i32.const 4)))
              (i32.add (local.get $bp) (i32.const 4)) (local.get $blen)))))
          (call $reply (i32.const 0))
          (br $next)))
      (if (i32.eqz (local.get $blen))
        (then (call $reply (i32.const 0)) (br $next)))
      (local.set $cmd (i32.load8_u (i32.add (local.get $bp) (i32.const 4))))
      (local.set $arg (i32.add (local.get $bp) (i32.const 5)))
      (local.set $alen (i32.sub (local.get $blen) (i32.const 1)))
      (block $done
        (if (i32.eq (local.get $cmd) (i32.const 0x64)) ;; 'd'
          (then
            (if (call $take)
              (then
                (global.set $again (i32.wrap_i64 (call $defer)))
                (call $reply (i32.const 0))))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x72)) ;; 'r'
          (then
            (call $reply (call $later (global.get $tok) (local.get $arg) (local.get $alen)))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x74)) ;; 't'
          (then
            (call $reply (call $later (i64.load (local.get $arg))
              (i32.add (local.get $arg) (i32.const 8)) (i32.sub (local.get $alen) (i32.const 8))))
            (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x6b)) ;; 'k'
          (then (call $reply (i32.wrap_i64 (global.get $tok))) (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x61)) ;; 'a'
          (then (call $reply (global.get $again)) (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x63)) ;; 'c'
          (then (call $reply (global.get $last)) (br $done)))
        (if (i32.eq (local.get $cmd) (i32.const 0x66)) ;; 'f'
          (then
            (if (call $take)
              (then
                (i64.store (i32.sub (i32.add (local.get $arg) (local.get $alen)) (i32.const 12)) (global.get $tok))
                (local.set $id (call $send (local.get $arg) (local.get $alen)))
                (if (i64.lt_s (local.get $id) (i64.const 0))
                  (then
                    (i32.store (global.get $RESP) (i32.wrap_i64 (local.get $id)))
                    (drop (call $later (global.get $tok) (global.get $RESP) (i32.const 4)))))))
            (br $done)))
        (call $reply (i32.const 0)))
      (br $next))
    (i32.const 0)))
