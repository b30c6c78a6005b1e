;; Imports a function no host provides and calls it from _start. A runtime must
;; refuse this module with a clear error naming env::does_not_exist.
(module
  (import "env" "does_not_exist" (func $does_not_exist))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $does_not_exist))
)
