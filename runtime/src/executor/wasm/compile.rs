//! Compiling a module into the on-disk code cache within a budget: at most
//! `compile-jobs` compiles at once, each in a helper process with a memory
//! limit (RLIMIT_DATA), a CPU limit (RLIMIT_CPU), a lower scheduling
//! priority (nice 10) and a wall-clock deadline after which it is killed.
//!
//! Why a process: Cranelift cannot be interrupted or told how much memory it
//! may use (wasmtime's security policy leaves compile-time denial of service
//! to the embedder), so a compile on one of berthd's threads could only be
//! abandoned, never stopped, and would take the daemon's memory with it. The
//! helper is berthd itself (`/proc/self/exe`, so always the same build and
//! engine configuration), started with [`HELPER_FLAG`]: it reads the module
//! on stdin, compiles it with [`engine_config`] and writes the serialized
//! code to stdout, a temp file in the cache directory that the daemon
//! renames into place and loads. It starts only when the cache misses, so
//! it costs nothing on the path of a container start of a module compiled
//! before. The helper is a resource boundary, not a privilege boundary: the
//! daemon loads the code it wrote, as it loads code it compiled itself.
//!
//! Without a helper (the library embedded in tests), modules compile on a
//! blocking thread under the same job limit and deadline; a compile past its
//! deadline is reported as refused, but runs on (holding its job slot) until
//! Cranelift finishes.

use super::WasiTarget;
use super::limits::WasmLimits;
use crate::error::{Error, Result, ResultExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use wasmtime::{CodeBuilder, Config, Engine};

/// The first argument that makes berthd a compile helper.
pub const HELPER_FLAG: &str = "--berth-wasm-compile-helper";

/// Exit codes of the helper.
const EXIT_INVALID: i32 = 65;
const EXIT_NO_MEMORY: i32 = 71;
const EXIT_FAILED: i32 = 70;

/// The most of the helper's stderr that is kept for the error message.
const STDERR_LIMIT: u64 = 64 * 1024;

/// The engine settings that decide the compiled code's format, shared by
/// the daemon's engine (which adds its instance pool) and the helper's, so
/// that what the helper writes is what the daemon's engine loads.
pub(super) fn engine_config() -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true);
    cfg
}

/// Why a compile failed, and whether trying again could change it.
pub(super) struct Refused {
    pub error: Error,
    /// The module itself is at fault (invalid, over a limit or a budget):
    /// the same module will fail the same way until berthd's limits change.
    pub lasting: bool,
}

impl From<Error> for Refused {
    fn from(error: Error) -> Refused {
        Refused {
            error,
            lasting: false,
        }
    }
}

pub(super) struct Compiler {
    limits: WasmLimits,
    /// The berthd binary to run as the helper; `None` compiles in-process.
    helper: Option<PathBuf>,
    jobs: Arc<Semaphore>,
}

impl Compiler {
    pub fn new(limits: WasmLimits, helper: Option<PathBuf>) -> Compiler {
        let jobs = Arc::new(Semaphore::new(limits.compile_jobs.max(1) as usize));
        Compiler {
            limits,
            helper,
            jobs,
        }
    }

    /// Pre-parses the module at `source` against the limits, then compiles
    /// it into `dest` (atomically: `dest` is whole or absent).
    pub async fn compile(
        &self,
        engine: &Engine,
        source: &Path,
        target: WasiTarget,
        dest: &Path,
    ) -> Result<(), Refused> {
        {
            let limits = self.limits.clone();
            let source = source.to_path_buf();
            tokio::task::spawn_blocking(move || limits.check_file(&source))
                .await
                .map_err(|e| Error::internal(format!("checking the module: {e}")))?
                .map_err(|error| Refused {
                    lasting: error.kind() == crate::ErrorKind::InvalidArgument,
                    error,
                })?;
        }
        let permit = self
            .jobs
            .clone()
            .acquire_owned()
            .await
            .expect("the job semaphore is never closed");
        match &self.helper {
            Some(helper) => {
                let r = self.in_helper(helper, source, target, dest).await;
                drop(permit);
                r
            }
            None => self.in_process(engine, source, target, dest, permit).await,
        }
    }

    async fn in_helper(
        &self,
        helper: &Path,
        source: &Path,
        target: WasiTarget,
        dest: &Path,
    ) -> Result<(), Refused> {
        let tmp = temp_path(dest);
        let out = std::fs::File::create_new(&tmp).ctx(format!("creating {}", tmp.display()))?;
        let input = std::fs::File::open(source).ctx(format!("opening {}", source.display()))?;
        let mut cmd = tokio::process::Command::new(helper);
        cmd.arg0("berthd")
            .arg(HELPER_FLAG)
            .arg(target.as_str())
            .stdin(input)
            .stdout(out)
            .stderr(std::process::Stdio::piped())
            .env_clear()
            .kill_on_drop(true);
        let memory = self.limits.compile_memory;
        // CPU time counts every thread's: the helper may keep all cores
        // busy for the whole deadline, not longer.
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let cpu = self.limits.compile_time.as_secs().max(1) * cores;
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || limit_self(memory, cpu));
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::internal(format!(
                    "starting the Wasm compiler ({}): {e}",
                    helper.display()
                ))
                .into());
            }
        };
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let run = async {
            let mut err = Vec::new();
            let _ = (&mut stderr).take(STDERR_LIMIT).read_to_end(&mut err).await;
            (child.wait().await, err)
        };
        let outcome = tokio::time::timeout(self.limits.compile_time, run).await;
        let (status, err) = match outcome {
            Ok((status, err)) => (status, err),
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let _ = std::fs::remove_file(&tmp);
                return Err(Refused {
                    error: self.over_time(),
                    // A busy host can slow a compile down: not the
                    // module's fault for sure.
                    lasting: false,
                });
            }
        };
        let status = status.ctx("waiting for the Wasm compiler")?;
        let err = String::from_utf8_lossy(&err).trim().to_string();
        if status.success() {
            let done = std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&tmp, dest));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::internal(format!(
                    "storing the compiled module in {}: {e}",
                    dest.display()
                ))
                .into());
            }
            return Ok(());
        }
        let _ = std::fs::remove_file(&tmp);
        use std::os::unix::process::ExitStatusExt;
        let lasting = |error| Refused {
            error,
            lasting: true,
        };
        Err(match (status.code(), status.signal()) {
            (Some(EXIT_INVALID), _) => lasting(Error::invalid(format!(
                "not a valid WebAssembly module: {err}"
            ))),
            (Some(EXIT_NO_MEMORY), _) => lasting(self.over_memory()),
            (_, Some(libc::SIGXCPU)) => lasting(self.over_time()),
            _ if out_of_memory(&err) => lasting(self.over_memory()),
            // Killed without a word: the kernel's OOM killer.
            (_, Some(libc::SIGKILL)) => Refused::from(self.over_memory()),
            _ => Refused::from(Error::internal(format!(
                "compiling the module failed ({status}): {err}"
            ))),
        })
    }

    async fn in_process(
        &self,
        engine: &Engine,
        source: &Path,
        target: WasiTarget,
        dest: &Path,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<(), Refused> {
        let engine = engine.clone();
        let source = source.to_path_buf();
        let dest = dest.to_path_buf();
        let work = tokio::task::spawn_blocking(move || {
            // Held until Cranelift is done, even past the deadline.
            let _permit = permit;
            let bytes = std::fs::read(&source).ctx(format!("reading {}", source.display()))?;
            let code = precompile(&engine, &bytes, target).map_err(|e| Refused {
                lasting: true,
                error: Error::invalid(format!("not a valid WebAssembly module: {e:#}")),
            })?;
            crate::util::fsutil::write_atomic(&dest, &code)
                .ctx(format!("storing the compiled module in {}", dest.display()))?;
            Ok(())
        });
        match tokio::time::timeout(self.limits.compile_time, work).await {
            Ok(joined) => {
                joined.map_err(|e| Error::internal(format!("compiling the module: {e}")))?
            }
            Err(_) => Err(Refused {
                error: self.over_time(),
                lasting: false,
            }),
        }
    }

    fn over_time(&self) -> Error {
        Error::invalid(format!(
            "the module is too costly to compile: compiling it took longer than {} s, berthd's \
             limit (an operator can raise it with `berthd --wasm-limit compile-time=SECONDS`)",
            self.limits.compile_time.as_secs()
        ))
    }

    fn over_memory(&self) -> Error {
        Error::invalid(format!(
            "the module is too costly to compile: compiling it needed more than {} MiB of memory, \
             berthd's limit (an operator can raise it with `berthd --wasm-limit compile-memory=BYTES`)",
            self.limits.compile_memory >> 20
        ))
    }
}

/// A temp name next to `dest`, in the same directory (for the rename).
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{}.tmp", crate::util::random_id()))
}

/// Removes temp files a compile left behind when berthd died during it.
pub(super) fn sweep_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Did the helper run out of memory, by what it said?
fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation of")
        || stderr.contains("os error 12")
        || stderr.contains("Cannot allocate memory")
        || stderr.contains("out of memory")
}

/// The helper's limits, set in the child between fork and exec.
fn limit_self(memory: u64, cpu_secs: u64) -> std::io::Result<()> {
    let set = |resource, soft: u64, hard: u64| {
        let lim = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit with a valid pointer; async-signal-safe.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // RLIMIT_DATA, not RLIMIT_AS: the address space also holds reservations
    // that use no memory (each malloc arena reserves 64 MiB per thread,
    // and there is a thread per core), so a cap on it would refuse small
    // modules on a many-core host.
    set(libc::RLIMIT_DATA, memory, memory)?;
    // SIGXCPU at the soft limit, SIGKILL a second later.
    set(libc::RLIMIT_CPU, cpu_secs, cpu_secs + 1)?;
    set(libc::RLIMIT_CORE, 0, 0)?;
    // The daemon's own threads and the guests come first.
    // SAFETY: setpriority on this process; async-signal-safe.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    Ok(())
}

fn precompile(engine: &Engine, bytes: &[u8], target: WasiTarget) -> wasmtime::Result<Vec<u8>> {
    let mut b = CodeBuilder::new(engine);
    b.wasm_binary(bytes, None)?;
    match target {
        WasiTarget::Wasip1 => b.compile_module_serialized(),
        WasiTarget::Wasip2 => b.compile_component_serialized(),
    }
}

/// berthd started as the compile helper: compiles the module on stdin to
/// stdout and returns the exit code. `None` when started as anything else.
/// Call first thing in `main`.
pub fn helper_main() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(HELPER_FLAG)) {
        return None;
    }
    let target = match args.next().as_deref().and_then(|t| t.to_str()) {
        Some("wasip1") => WasiTarget::Wasip1,
        Some("wasip2") => WasiTarget::Wasip2,
        _ => {
            eprintln!("usage: berthd {HELPER_FLAG} wasip1|wasip2 <MODULE >CODE");
            return Some(64);
        }
    };
    Some(match run_helper(target) {
        Ok(()) => 0,
        Err((code, message)) => {
            eprintln!("{message}");
            code
        }
    })
}

fn run_helper(target: WasiTarget) -> std::result::Result<(), (i32, String)> {
    use std::io::{Read, Write};
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        let message = format!("{what}: {e:#}");
        let code = if out_of_memory(&message) {
            EXIT_NO_MEMORY
        } else {
            EXIT_FAILED
        };
        (code, message)
    };
    let mut wasm = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut wasm)
        .map_err(|e| failed("reading the module", &e))?;
    let engine = Engine::new(&engine_config()).map_err(|e| failed("starting the engine", &e))?;
    let code = precompile(&engine, &wasm, target).map_err(|e| {
        let message = format!("{e:#}");
        if out_of_memory(&message) {
            (EXIT_NO_MEMORY, message)
        } else {
            (EXIT_INVALID, message)
        }
    })?;
    drop(wasm);
    let mut out = std::io::stdout().lock();
    out.write_all(&code)
        .and_then(|()| out.flush())
        .map_err(|e| failed("writing the compiled code", &e))
}
