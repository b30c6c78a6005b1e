//! `sleep` (wasm32-wasip1): prints `sleeping N` (flushed), then sleeps N
//! seconds in one `std::thread::sleep` (a single `poll_oneoff` host call), then
//! exits 0 silently. N is argv[1] as given (fractions allowed, e.g. `0.5`),
//! default 3600. Used to test stopping a module blocked in a host call.

use std::io::Write;
use std::time::Duration;

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "3600".to_string());
    let dur = match arg.parse::<f64>().map(Duration::try_from_secs_f64) {
        Ok(Ok(d)) => d,
        _ => {
            eprintln!("sleep: want a non-negative number of seconds, got {arg:?}");
            std::process::exit(2);
        }
    };

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "sleeping {arg}");
    let _ = out.flush();
    drop(out);

    std::thread::sleep(dur);
}
