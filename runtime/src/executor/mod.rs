//! Executors run a container's process: [`wasm`] in the daemon's wasmtime
//! engine, native Linux processes in the native executor.
//!
//! The interface (and the native executor, with its shim) is the
//! `berth-executor` crate, re-exported here; it depends on nothing above
//! it. The Wasm executor lives here, beside wasmtime.

pub mod wasm;

pub use berth_executor::{
    Control, DefaultAction, ExecProcess, ExecSpec, Executor, ExecutorKind, ExitCallback,
    ExitStatus, Launch, NativeLaunch, OutputSink, Reattached, Running, StdinReader, StdinWriter,
    Stdio, Usage, WasiTarget, WasmModule, Workload, default_action, log, native, parse_signal,
    signal_name,
};
