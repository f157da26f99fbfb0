;; The reference guest of BenchmarkBareRoundTrip: run(n) calls the host
;; function env.hop n times. Plain wazero, no Extism, no weft ABI.
(module
  (import "env" "hop" (func $hop))
  (func (export "run") (param $n i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (call $hop)
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))))
