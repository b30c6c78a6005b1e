;; A WASI preview 1 core module in WAT: writes "Hello from WAT!\n" to stdout
;; with fd_write and returns from _start (exit 0). Built as out/wat-hello.wasm.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 16, len = 16 }; nwritten at 8; text at 16.
  (data (i32.const 0) "\10\00\00\00\10\00\00\00")
  (data (i32.const 16) "Hello from WAT!\n")
  (func (export "_start")
    (drop (call $fd_write
      (i32.const 1)    ;; fd: stdout
      (i32.const 0)    ;; iovs
      (i32.const 1)    ;; iovs_len
      (i32.const 8)))) ;; nwritten
)
