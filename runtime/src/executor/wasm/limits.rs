//! What compiling a module may cost: the counts and sizes a module may have
//! (checked by a cheap pre-parse before anything is compiled) and the time,
//! memory and parallelism a compile gets (enforced by [`super::compile`]).
//!
//! Compile time and memory grow with a module's functions, code and
//! declarations, and Cranelift cannot be interrupted once it runs: a 5 MB
//! module of a million empty functions took 28 s and 5 GB to compile. The
//! pre-parse reads only section headers, function body headers and local
//! declarations (wasmparser, no validation), so refusing such a module costs
//! a millisecond per megabyte. Components are walked with every nested core
//! module and component; counts add up over all of them, since that is what
//! compiling them costs.
//!
//! The defaults are far above what real modules have (the largest real
//! WASI modules have tens of thousands of functions); every limit can be
//! changed with berthd's `--wasm-limit NAME=VALUE`, which every error names.

use crate::error::{Error, Result, ResultExt};
use std::path::Path;
use std::time::Duration;
use wasmparser::{Parser, Payload};

/// The bounds on one module's compile. See [`WasmLimits::KEYS`] for their
/// names as `--wasm-limit` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmLimits {
    /// Bytes of the module or component binary.
    pub module_size: u64,
    /// Functions defined (code section entries), plus canonical functions
    /// of components, over all core modules and components.
    pub functions: u64,
    /// Bytes of one function body.
    pub function_size: u64,
    /// Locals declared by one function.
    pub locals: u64,
    /// Type declarations (core and component).
    pub types: u64,
    /// Imports (core and component).
    pub imports: u64,
    /// Exports (core and component).
    pub exports: u64,
    pub globals: u64,
    pub tables: u64,
    pub memories: u64,
    pub data_segments: u64,
    pub element_segments: u64,
    /// Core modules nested in a component.
    pub modules: u64,
    /// Core and component instances declared by components.
    pub instances: u64,
    /// How deep components may nest.
    pub nesting: u64,
    /// Memory one compile may use, in bytes (the helper's RLIMIT_DATA).
    pub compile_memory: u64,
    /// Wall-clock time one compile may take.
    pub compile_time: Duration,
    /// Compiles that run at once; more wait for a turn.
    pub compile_jobs: u64,
}

/// How a limit's value is written.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Bytes,
    Seconds,
}

impl Default for WasmLimits {
    fn default() -> WasmLimits {
        WasmLimits {
            module_size: 256 << 20,
            functions: 250_000,
            function_size: 4 << 20,
            locals: 25_000,
            types: 100_000,
            imports: 100_000,
            exports: 100_000,
            globals: 100_000,
            tables: 100,
            memories: 100,
            data_segments: 100_000,
            element_segments: 100_000,
            modules: 1_000,
            instances: 10_000,
            nesting: 16,
            compile_memory: 4 << 30,
            compile_time: Duration::from_secs(300),
            compile_jobs: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(2),
        }
    }
}

impl WasmLimits {
    /// Every limit's name, unit and meaning, as `--wasm-limit` takes them.
    pub const KEYS: &[(&str, &str)] = &[
        ("module-size", "bytes of a module or component binary"),
        (
            "functions",
            "functions defined, over all modules of a component",
        ),
        ("function-size", "bytes of one function body"),
        ("locals", "locals of one function"),
        ("types", "type declarations"),
        ("imports", "imports"),
        ("exports", "exports"),
        ("globals", "globals"),
        ("tables", "tables"),
        ("memories", "memories"),
        ("data-segments", "data segments"),
        ("element-segments", "element segments"),
        ("modules", "core modules in a component"),
        ("instances", "instances a component declares"),
        ("nesting", "depth of nested components"),
        ("compile-memory", "bytes of memory one compile may use"),
        ("compile-time", "seconds one compile may take"),
        ("compile-jobs", "compiles that run at once"),
    ];

    fn slot(&mut self, key: &str) -> Option<(&mut u64, Unit)> {
        use Unit::*;
        Some(match key {
            "module-size" => (&mut self.module_size, Bytes),
            "functions" => (&mut self.functions, Count),
            "function-size" => (&mut self.function_size, Bytes),
            "locals" => (&mut self.locals, Count),
            "types" => (&mut self.types, Count),
            "imports" => (&mut self.imports, Count),
            "exports" => (&mut self.exports, Count),
            "globals" => (&mut self.globals, Count),
            "tables" => (&mut self.tables, Count),
            "memories" => (&mut self.memories, Count),
            "data-segments" => (&mut self.data_segments, Count),
            "element-segments" => (&mut self.element_segments, Count),
            "modules" => (&mut self.modules, Count),
            "instances" => (&mut self.instances, Count),
            "nesting" => (&mut self.nesting, Count),
            "compile-memory" => (&mut self.compile_memory, Bytes),
            "compile-jobs" => (&mut self.compile_jobs, Count),
            _ => return None,
        })
    }

    /// Applies one `NAME=VALUE` of `--wasm-limit`. Sizes take a `k`, `m` or
    /// `g` suffix (powers of 1024); `compile-time` is in seconds.
    pub fn set(&mut self, arg: &str) -> std::result::Result<(), String> {
        let names = || {
            Self::KEYS
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (key, value) = arg.split_once('=').ok_or_else(|| {
            format!(
                "invalid --wasm-limit {arg:?}: use NAME=VALUE, NAME one of {}",
                names()
            )
        })?;
        let key = key.trim();
        let bad = |why: &str| format!("invalid --wasm-limit {arg:?}: {why}");
        if key == "compile-time" {
            let secs = parse_number(value, Unit::Seconds).map_err(|e| bad(&e))?;
            self.compile_time = Duration::from_secs(secs);
            return Ok(());
        }
        let (slot, unit) = self.slot(key).ok_or_else(|| {
            bad(&format!(
                "unknown limit {key:?}; the limits are {}",
                names()
            ))
        })?;
        *slot = parse_number(value, unit).map_err(|e| bad(&e))?;
        Ok(())
    }

    /// Pre-parses the module at `path` (mapped, not read into memory).
    pub fn check_file(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::open(path).ctx(format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .ctx(format!("reading {}", path.display()))?
            .len();
        self.check_size(len)?;
        let map = Mapped::new(&file, len).ctx(format!("mapping {}", path.display()))?;
        self.check(map.bytes())
    }

    fn check_size(&self, len: u64) -> Result<()> {
        if len > self.module_size {
            return Err(over(
                format!("the module is {len} bytes"),
                self.module_size,
                "module-size",
                "bytes",
            ));
        }
        Ok(())
    }

    /// Refuses a module or component whose counts or sizes exceed a limit,
    /// before anything compiles it. Says which limit and how to raise it.
    /// Malformed binaries pass when their headers do: the compiler's
    /// validation refuses them with its own message.
    pub fn check(&self, bytes: &[u8]) -> Result<()> {
        self.check_size(bytes.len() as u64)?;
        let mut totals = Totals::default();
        let mut depth: u64 = 0;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = match payload {
                Ok(p) => p,
                Err(e) => {
                    return Err(Error::invalid(format!(
                        "not a valid WebAssembly module: {e}"
                    )));
                }
            };
            match payload {
                Payload::TypeSection(s) => totals.add(self, Count::Types, s.count())?,
                Payload::ImportSection(s) => totals.add(self, Count::Imports, s.count())?,
                Payload::FunctionSection(s) => {
                    // The code section must match; counting the declarations
                    // refuses before any body is read.
                    totals.declared += u64::from(s.count());
                    let functions = totals.counts[Count::Functions as usize] + totals.declared;
                    totals.check(self, Count::Functions, functions)?;
                }
                Payload::TableSection(s) => totals.add(self, Count::Tables, s.count())?,
                Payload::MemorySection(s) => totals.add(self, Count::Memories, s.count())?,
                Payload::GlobalSection(s) => totals.add(self, Count::Globals, s.count())?,
                Payload::ExportSection(s) => totals.add(self, Count::Exports, s.count())?,
                Payload::ElementSection(s) => {
                    totals.add(self, Count::ElementSegments, s.count())?
                }
                Payload::DataSection(s) => totals.add(self, Count::DataSegments, s.count())?,
                Payload::CodeSectionStart { count, .. } => {
                    totals.declared = 0;
                    totals.add(self, Count::Functions, count)?;
                }
                Payload::CodeSectionEntry(body) => self.check_body(&body)?,
                Payload::ModuleSection { .. } => {
                    totals.add(self, Count::Modules, 1)?;
                    depth += 1;
                }
                Payload::ComponentSection { .. } => {
                    depth += 1;
                    if depth > self.nesting {
                        return Err(over(
                            format!("its components nest {depth} deep"),
                            self.nesting,
                            "nesting",
                            "levels",
                        ));
                    }
                }
                Payload::End(_) => {
                    totals.declared = 0;
                    depth = depth.saturating_sub(1);
                }
                Payload::InstanceSection(s) => totals.add(self, Count::Instances, s.count())?,
                Payload::ComponentInstanceSection(s) => {
                    totals.add(self, Count::Instances, s.count())?
                }
                Payload::CoreTypeSection(s) => totals.add(self, Count::Types, s.count())?,
                Payload::ComponentTypeSection(s) => totals.add(self, Count::Types, s.count())?,
                Payload::ComponentImportSection(s) => {
                    totals.add(self, Count::Imports, s.count())?
                }
                Payload::ComponentExportSection(s) => {
                    totals.add(self, Count::Exports, s.count())?
                }
                // Each lifted or lowered function is compiled into a
                // trampoline.
                Payload::ComponentCanonicalSection(s) => {
                    totals.add(self, Count::Functions, s.count())?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_body(&self, body: &wasmparser::FunctionBody<'_>) -> Result<()> {
        let size = body.range().len() as u64;
        if size > self.function_size {
            return Err(over(
                format!("a function body is {size} bytes"),
                self.function_size,
                "function-size",
                "bytes",
            ));
        }
        let mut locals = body
            .get_locals_reader()
            .map_err(|e| Error::invalid(format!("not a valid WebAssembly module: {e}")))?;
        let mut total: u64 = 0;
        for _ in 0..locals.get_count() {
            let (n, _) = locals
                .read()
                .map_err(|e| Error::invalid(format!("not a valid WebAssembly module: {e}")))?;
            total += u64::from(n);
            if total > self.locals {
                return Err(over(
                    format!("a function declares {total} or more locals"),
                    self.locals,
                    "locals",
                    "locals",
                ));
            }
        }
        Ok(())
    }
}

/// What is counted over a whole binary.
#[derive(Clone, Copy)]
enum Count {
    Functions,
    Types,
    Imports,
    Exports,
    Globals,
    Tables,
    Memories,
    DataSegments,
    ElementSegments,
    Modules,
    Instances,
}

impl Count {
    fn describe(self, limits: &WasmLimits) -> (&'static str, &'static str, u64) {
        match self {
            Count::Functions => ("functions", "functions", limits.functions),
            Count::Types => ("types", "types", limits.types),
            Count::Imports => ("imports", "imports", limits.imports),
            Count::Exports => ("exports", "exports", limits.exports),
            Count::Globals => ("globals", "globals", limits.globals),
            Count::Tables => ("tables", "tables", limits.tables),
            Count::Memories => ("memories", "memories", limits.memories),
            Count::DataSegments => ("data-segments", "data segments", limits.data_segments),
            Count::ElementSegments => (
                "element-segments",
                "element segments",
                limits.element_segments,
            ),
            Count::Modules => ("modules", "core modules", limits.modules),
            Count::Instances => ("instances", "instances", limits.instances),
        }
    }
}

#[derive(Default)]
struct Totals {
    counts: [u64; 11],
    /// Functions declared by the current module's function section, until
    /// its code section counts them.
    declared: u64,
}

impl Totals {
    fn add(&mut self, limits: &WasmLimits, what: Count, n: u32) -> Result<()> {
        let slot = &mut self.counts[what as usize];
        *slot += u64::from(n);
        let total = *slot;
        self.check(limits, what, total)
    }

    fn check(&self, limits: &WasmLimits, what: Count, total: u64) -> Result<()> {
        let (key, noun, limit) = what.describe(limits);
        if total > limit {
            return Err(over(format!("it has {total} {noun}"), limit, key, noun));
        }
        Ok(())
    }
}

/// The error for a module over a limit: what it has, the limit, and the
/// daemon option that raises it.
fn over(what: String, limit: u64, key: &str, noun: &str) -> Error {
    Error::invalid(format!(
        "the module is too costly to compile: {what}, more than berthd's limit of {limit} {noun} \
         (an operator can raise it with `berthd --wasm-limit {key}=N`)"
    ))
}

fn parse_number(value: &str, unit: Unit) -> std::result::Result<u64, String> {
    let v = value.trim().to_ascii_lowercase();
    let (digits, scale) = match unit {
        Unit::Bytes => {
            let v = v.strip_suffix('b').unwrap_or(&v).to_string();
            match v.chars().last() {
                Some('k') => (v[..v.len() - 1].to_string(), 1u64 << 10),
                Some('m') => (v[..v.len() - 1].to_string(), 1 << 20),
                Some('g') => (v[..v.len() - 1].to_string(), 1 << 30),
                _ => (v, 1),
            }
        }
        Unit::Seconds => (v.strip_suffix('s').unwrap_or(&v).to_string(), 1),
        Unit::Count => (v, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    let n = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{value:?} is too large"))?;
    if n == 0 {
        return Err("a limit of 0 would refuse every module".into());
    }
    Ok(n)
}

/// A file mapped read-only: the pre-parse touches only the pages it reads
/// (headers), not the module's code and data.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    fn new(file: &std::fs::File, len: u64) -> std::io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(len).map_err(|_| std::io::Error::other("file too large"))?;
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len,
            });
        }
        // SAFETY: a fresh private read-only mapping of an open file; blobs
        // and containers' module copies are never written in place.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the mapping is `len` readable bytes and lives as long as
        // `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping what `new` mapped, once.
            unsafe {
                libc::munmap(self.ptr, self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(n: usize) -> Vec<u8> {
        let mut wat = String::from("(module");
        for _ in 0..n {
            wat.push_str(" (func)");
        }
        wat.push(')');
        wat::parse_str(&wat).unwrap()
    }

    fn small() -> WasmLimits {
        WasmLimits {
            functions: 10,
            ..Default::default()
        }
    }

    #[test]
    fn too_many_functions_names_the_limit_and_option() {
        let limits = small();
        limits.check(&funcs(10)).unwrap();
        let e = limits.check(&funcs(11)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("11 functions"), "{msg}");
        assert!(msg.contains("limit of 10"), "{msg}");
        assert!(msg.contains("--wasm-limit functions=N"), "{msg}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
    }

    #[test]
    fn functions_are_refused_from_the_declarations_before_the_code() {
        // A function section that promises many functions, and no code
        // section at all: refused without reading a body.
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        // function section: 1,000,000 entries of type 0 would follow;
        // the count alone is enough.
        m.extend_from_slice(&[3, 4, 0xc0, 0x84, 0x3d, 0]);
        let e = small().check(&m).unwrap_err();
        assert!(e.to_string().contains("1000000 functions"), "{e}");
    }

    #[test]
    fn default_limits_refuse_a_million_functions_and_take_real_modules() {
        let limits = WasmLimits::default();
        let e = limits.check(&funcs(1_000_000)).unwrap_err();
        assert!(e.to_string().contains("functions"), "{e}");
        limits.check(&funcs(1000)).unwrap();
    }

    #[test]
    fn every_count_is_bounded() {
        let cases: &[(&str, String, &str)] = &[
            ("types", "(type (func))".repeat(3), "3 types"),
            (
                "imports",
                r#"(import "a" "b" (func))"#.repeat(3),
                "3 imports",
            ),
            (
                "globals",
                "(global i32 (i32.const 0))".repeat(3),
                "3 globals",
            ),
            ("tables", "(table 0 funcref)".repeat(3), "3 tables"),
            ("memories", "(memory 0)".repeat(3), "3 memories"),
            ("data-segments", "(data \"\")".repeat(3), "3 data segments"),
            (
                "element-segments",
                "(elem func)".repeat(3),
                "3 element segments",
            ),
        ];
        for (key, body, want) in cases {
            let module = wat::parse_str(format!("(module {body})")).unwrap();
            let mut limits = WasmLimits::default();
            limits.set(&format!("{key}=2")).unwrap();
            let e = limits.check(&module).unwrap_err().to_string();
            assert!(e.contains(want), "{key}: {e}");
            assert!(e.contains(&format!("--wasm-limit {key}=N")), "{key}: {e}");
            limits.set(&format!("{key}=3")).unwrap();
            limits.check(&module).unwrap();
        }
        let exports = wat::parse_str(
            r#"(module (func) (export "a" (func 0)) (export "b" (func 0)) (export "c" (func 0)))"#,
        )
        .unwrap();
        let mut limits = WasmLimits::default();
        limits.set("exports=2").unwrap();
        assert!(
            limits
                .check(&exports)
                .unwrap_err()
                .to_string()
                .contains("3 exports")
        );
    }

    #[test]
    fn function_size_and_locals_are_bounded_per_function() {
        let big = wat::parse_str(format!(
            "(module (func {}))",
            "(drop (i32.const 0))".repeat(1000)
        ))
        .unwrap();
        let mut limits = WasmLimits::default();
        limits.set("function-size=1k").unwrap();
        let e = limits.check(&big).unwrap_err().to_string();
        assert!(e.contains("--wasm-limit function-size=N"), "{e}");

        let locals =
            wat::parse_str(format!("(module (func {}))", "(local i32)".repeat(40))).unwrap();
        let mut limits = WasmLimits::default();
        limits.set("locals=39").unwrap();
        let e = limits.check(&locals).unwrap_err().to_string();
        assert!(e.contains("40 or more locals"), "{e}");
        limits.set("locals=40").unwrap();
        limits.check(&locals).unwrap();
    }

    #[test]
    fn module_size_is_checked_first() {
        let mut limits = WasmLimits::default();
        limits.set("module-size=1k").unwrap();
        let e = limits.check(&funcs(500)).unwrap_err().to_string();
        assert!(e.contains("--wasm-limit module-size=N"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.wasm");
        std::fs::write(&p, funcs(500)).unwrap();
        let e = limits.check_file(&p).unwrap_err().to_string();
        assert!(e.contains("module-size"), "{e}");
        limits.set("module-size=1m").unwrap();
        limits.check_file(&p).unwrap();
    }

    #[test]
    fn components_count_their_nested_modules() {
        let core = |n: usize| format!("(core module{})", " (func)".repeat(n));
        // Two core modules of 6 functions each: 12 in all.
        let c = wat::parse_str(format!("(component {} {})", core(6), core(6))).unwrap();
        let mut limits = WasmLimits::default();
        limits.set("functions=11").unwrap();
        let e = limits.check(&c).unwrap_err().to_string();
        assert!(e.contains("12 functions"), "{e}");
        limits.set("functions=12").unwrap();
        limits.check(&c).unwrap();
        limits.set("modules=1").unwrap();
        let e = limits.check(&c).unwrap_err().to_string();
        assert!(e.contains("2 core modules"), "{e}");

        // Components nested three deep.
        let nested = wat::parse_str("(component (component (component (component))))").unwrap();
        let mut limits = WasmLimits::default();
        limits.set("nesting=2").unwrap();
        let e = limits.check(&nested).unwrap_err().to_string();
        assert!(e.contains("nest 3 deep"), "{e}");
    }

    #[test]
    fn limits_parse_from_the_option() {
        let mut l = WasmLimits::default();
        l.set("module-size=64m").unwrap();
        assert_eq!(l.module_size, 64 << 20);
        l.set("compile-memory=2g").unwrap();
        assert_eq!(l.compile_memory, 2 << 30);
        l.set("compile-time=5").unwrap();
        assert_eq!(l.compile_time, Duration::from_secs(5));
        l.set("functions=1000000").unwrap();
        assert_eq!(l.functions, 1_000_000);
        assert!(l.set("nope=1").unwrap_err().contains("unknown limit"));
        assert!(l.set("functions").unwrap_err().contains("NAME=VALUE"));
        assert!(
            l.set("functions=lots")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(l.set("functions=0").is_err());
        assert!(
            l.set("module-size=99999999999g")
                .unwrap_err()
                .contains("too large")
        );
    }
}
