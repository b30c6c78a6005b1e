//! `spin` (wasm32-wasip1): prints `spinning` once, flushed, then burns CPU
//! forever without a single host call. Only epoch interruption (or fuel) can
//! stop it, which is what the stop/timeout tests check.

use std::hint::black_box;
use std::io::Write;

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "spinning");
    let _ = out.flush();
    drop(out);

    let mut x: u64 = black_box(1);
    loop {
        // An LCG step; black_box keeps the optimizer from proving anything
        // about the loop, so it can neither delete it nor hoist it.
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
    }
}
