//! One module per command, each a clap `XxxCommand` with
//! `async fn execute(self, &Client) -> anyhow::Result<i32>` returning the
//! process exit code. Commands print; the client does not.

pub mod attach;
pub mod commit;
pub mod container;
pub mod cp;
pub mod create;
pub mod diff;
pub mod events;
pub mod exec;
pub mod export;
pub mod image;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod pause;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod tag;
pub mod top;
pub mod update;
pub mod version;
pub mod wait;
pub mod wasm;

/// Acts on each of several objects in turn, as docker's commands that take
/// a list do (`stop`, `kill`, `rm`, `rmi`, `pause`, ...): `op` asks the
/// daemon, `done` prints what succeeded; an object that fails has its error
/// printed and the others still go ahead. Exits 1 if any failed.
pub async fn each<'a, T, E, Fut>(
    names: &'a [String],
    mut op: impl FnMut(&'a str) -> Fut,
    mut done: impl FnMut(&str, T) -> std::io::Result<()>,
) -> anyhow::Result<i32>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut failed = false;
    for name in names {
        match op(name).await {
            Ok(v) => done(name, v)?,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// [`each`]'s `done` for commands that print the name they were given.
pub fn print_name<T>(name: &str, _: T) -> std::io::Result<()> {
    crate::output::println(name)
}
