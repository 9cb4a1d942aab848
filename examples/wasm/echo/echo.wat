;; echo.wat: a WASI preview 1 command that copies stdin to stdout and does
;; nothing else, the "noop" of the wasm kind. Hand-written (no language
;; runtime to start), so a run costs little more than the executor's own
;; overhead: it is the module of bench/wasm.sh.
;;
;; Build (wabt; Debian: apt-get install wabt):
;;
;;   wat2wasm examples/wasm/echo/echo.wat -o examples/wasm/echo/echo.wasm
;;
;; echo.wasm is committed; TestEchoModuleMatchesSource (executor/wasm)
;; checks it against this file when wat2wasm is installed.
;;
;; Memory layout (one 64 KiB page):
;;   0..7    an iovec {buf, len}
;;   8..11   bytes read or written by the last call
;;   16..    the copy buffer (65520 bytes)
;; A failed read or write (for example stdout over the executor's
;; max_output_bytes) exits with code 1.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32)
    (local $off i32)
    (local $done i32)
    (loop $read
      ;; n = fd_read(stdin, {16, 65520})
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const 65520))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.load (i32.const 8)))
      ;; end of input
      (if (i32.eqz (local.get $n))
        (then (return)))
      ;; write buf[off:off+n] until all of it is out
      (local.set $off (i32.const 16))
      (loop $write
        (i32.store (i32.const 0) (local.get $off))
        (i32.store (i32.const 4) (local.get $n))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $done (i32.load (i32.const 8)))
        ;; no progress: give up rather than spin
        (if (i32.eqz (local.get $done))
          (then (call $proc_exit (i32.const 1))))
        (local.set $off (i32.add (local.get $off) (local.get $done)))
        (local.set $n (i32.sub (local.get $n) (local.get $done)))
        (br_if $write (local.get $n)))
      (br $read)))
)
