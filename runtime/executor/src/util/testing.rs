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
