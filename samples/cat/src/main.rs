//! `cat` (wasm32-wasip1): copies stdin to stdout until EOF, flushing after
//! every read so interactive (attach) tests see their bytes at once. Then
//! prints `cat: N bytes` to stderr and exits 0. A write error (e.g. a closed
//! stdout) exits 1 with `cat: write error: ...` on stderr.

use std::io::{ErrorKind, Read, Write};

fn main() {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("cat: read error: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = stdout.write_all(&buf[..n]).and_then(|()| stdout.flush()) {
            eprintln!("cat: write error: {e}");
            std::process::exit(1);
        }
        total += n as u64;
    }
    eprintln!("cat: {total} bytes");
}
