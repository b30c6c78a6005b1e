//! Records the exact wasmtime version from Cargo.lock for `berth version`.

fn main() {
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasmtime\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            version = v.trim_end_matches('"').to_string();
            break;
        }
    }
    println!("cargo:rustc-env=BERTH_WASMTIME_VERSION={version}");
}
