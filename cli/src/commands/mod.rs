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
