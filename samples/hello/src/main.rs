//! `hello` (wasm32-wasip1): the basic sample that tests assert on.
//!
//! Output on stdout, one item per line, nothing else:
//!
//! ```text
//! Hello from Wasm!
//! argv[0]=<argv0>
//! argv[1]=...              (every argument, as given, including the flags below)
//! GREETING=<value>         (only if the env var GREETING is set)
//! cwd=<dir>                (only if the WASI libc reports a current directory)
//! ```
//!
//! Flags (anywhere in argv): `--stderr MSG` writes `MSG\n` to stderr after the
//! stdout lines; `--exit N` then exits with code N. Without `--exit` it returns 0.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Hello from Wasm!");
    for (i, arg) in args.iter().enumerate() {
        let _ = writeln!(out, "argv[{i}]={arg}");
    }
    if let Some(greeting) = std::env::var_os("GREETING") {
        let _ = writeln!(out, "GREETING={}", greeting.to_string_lossy());
    }
    if let Ok(cwd) = std::env::current_dir() {
        let _ = writeln!(out, "cwd={}", cwd.display());
    }
    let _ = out.flush();
    drop(out);

    if let Some(msg) = flag_value(&args, "--stderr") {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{msg}");
        let _ = err.flush();
    }

    if let Some(code) = flag_value(&args, "--exit") {
        match code.parse::<i32>() {
            Ok(code) => std::process::exit(code),
            Err(_) => {
                eprintln!("hello: --exit wants an integer, got {code:?}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The argument that follows the first `flag` in argv (argv[0] excluded).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let pos = args.iter().skip(1).position(|a| a == flag)? + 1;
    args.get(pos + 1).map(String::as_str)
}
