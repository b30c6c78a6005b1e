//! For tests that need what a machine may lack (root, mounted cgroups, a
//! program): outside CI such a test is skipped with the reason on stderr;
//! in CI (`CI=true`), where `.ci/run` installs everything, it fails, so a
//! test never passes by not running. Public (but hidden) so that the
//! runtime crate's tests use the same rule.

use std::fmt::Display;

/// Skips the calling test for `why` (it needs root, a cgroup2 mount, ...),
/// or fails it in CI. The caller returns after it.
pub fn skip(why: impl Display) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this test {why} (CI=true)"
    );
    eprintln!("skipping: this test {why}");
}

/// Whether this process is root; when not, [`skip`]s: `if !have_root() {
/// return; }`.
pub fn have_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        skip("needs root");
    }
    root
}

/// Runs this test binary again, only the test `test` of `module` (the
/// caller's `module_path!()`), with the variable `env.0` set to `env.1` so
/// that the test takes its child's part, as root ([`skip`]ped when not).
/// Returns the child's stdout; fails the calling test if the child failed.
pub fn rerun_as_child(module: &str, test: &str, env: (&str, &str)) -> Option<String> {
    if !have_root() {
        return None;
    }
    // The test's name without the crate's.
    let name = format!(
        "{}::{test}",
        module.split_once("::").map_or(module, |(_, rest)| rest)
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        env.1,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}
