//! `hello-p2` (wasm32-wasip2): a `wasi:cli/command` component, the preview 2
//! twin of `hello`. rustc's wasm32-wasip2 target emits the component directly.
//!
//! Output on stdout, one item per line, nothing else:
//!
//! ```text
//! Hello from a component!
//! argv[0]=<argv0>
//! argv[1]=...              (every argument, as given, including the flags below)
//! GREETING=<value>         (only if the env var GREETING is set)
//! ```
//!
//! Flags: `--stderr MSG` writes `MSG\n` to stderr; `--exit N` exits with code N.
//! WASI 0.2's stable `wasi:cli/exit.exit` carries only ok/err, so a host may
//! report any non-zero N as 1 unless it supports `exit-with-code`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Hello from a component!");
    for (i, arg) in args.iter().enumerate() {
        let _ = writeln!(out, "argv[{i}]={arg}");
    }
    if let Some(greeting) = std::env::var_os("GREETING") {
        let _ = writeln!(out, "GREETING={}", greeting.to_string_lossy());
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
                eprintln!("hello-p2: --exit wants an integer, got {code:?}");
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
