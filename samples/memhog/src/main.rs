//! `memhog` (wasm32-wasip1): allocates memory in 1 MiB chunks and keeps them,
//! writing every byte so nothing is left untouched. Prints `allocated N MiB`
//! each time N reaches a multiple of 16.
//!
//! `memhog [LIMIT_MIB]`: stop after LIMIT_MIB MiB, print `done N MiB` and exit 0.
//! Without a limit it allocates until the host refuses memory. When
//! `memory.grow` fails (a memory cap), it prints
//! `memhog: allocation failed after N MiB` to stderr and exits 1; a host that
//! traps on a failed grow stops it with a trap instead.

use std::hint::black_box;
use std::io::Write;

const CHUNK: usize = 1 << 20;

fn main() {
    let limit: Option<u64> = match std::env::args().nth(1) {
        None => None,
        Some(arg) => match arg.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                eprintln!("memhog: limit must be a number of MiB, got {arg:?}");
                std::process::exit(2);
            }
        },
    };

    let mut out = std::io::stdout();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut mib: u64 = 0;
    while limit.is_none_or(|l| mib < l) {
        let mut chunk = Vec::new();
        if chunks.try_reserve(1).is_err() || chunk.try_reserve_exact(CHUNK).is_err() {
            let _ = out.flush();
            eprintln!("memhog: allocation failed after {mib} MiB");
            std::process::exit(1);
        }
        // Touch every byte (non-zero, so nothing can treat it as fresh zeroes).
        chunk.resize(CHUNK, 0xA5);
        chunks.push(black_box(chunk));
        mib += 1;
        if mib % 16 == 0 {
            let _ = writeln!(out, "allocated {mib} MiB");
            let _ = out.flush();
        }
    }
    let _ = writeln!(out, "done {mib} MiB");
    let _ = out.flush();
}
