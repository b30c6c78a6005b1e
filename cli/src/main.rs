//! `berth`: the command-line client for berthd (and any Docker Engine API
//! daemon).
//!
//! This file owns argument parsing, the async runtime, and turning results
//! into exit codes. Each command lives in `commands/NAME.rs`; all HTTP goes
//! through `client`. Start-up cost matters (`berth run --rm` of a Wasm hello
//! should take a few milliseconds in total): one current-thread runtime, no
//! version negotiation round trip, nothing connects before it must.

mod client;
mod commands;

/// The static build's allocator (see Cargo.toml): dlmalloc takes memory
/// from the kernel in large pieces and keeps what is freed.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;
mod format;
mod opts;
mod output;
mod term;

use std::io::{self, Write};

use clap::{ArgAction, Parser, Subcommand};

use client::transport::DEFAULT_HOST;
use client::{Client, Host};
use commands::attach::AttachCommand;
use commands::commit::CommitCommand;
use commands::container::ContainerCommand;
use commands::cp::CpCommand;
use commands::create::CreateCommand;
use commands::diff::DiffCommand;
use commands::events::EventsCommand;
use commands::exec::ExecCommand;
use commands::export::ExportCommand;
use commands::image::ImageCommand;
use commands::images::ImagesCommand;
use commands::import::ImportCommand;
use commands::info::InfoCommand;
use commands::inspect::InspectCommand;
use commands::kill::KillCommand;
use commands::load::LoadCommand;
use commands::login::LoginCommand;
use commands::logout::LogoutCommand;
use commands::logs::LogsCommand;
use commands::pause::{PauseCommand, UnpauseCommand};
use commands::ps::PsCommand;
use commands::pull::PullCommand;
use commands::push::PushCommand;
use commands::rename::RenameCommand;
use commands::restart::RestartCommand;
use commands::rm::RmCommand;
use commands::rmi::RmiCommand;
use commands::run::RunCommand;
use commands::save::SaveCommand;
use commands::start::StartCommand;
use commands::stats::StatsCommand;
use commands::stop::StopCommand;
use commands::system::SystemCommand;
use commands::tag::TagCommand;
use commands::top::TopCommand;
use commands::update::UpdateCommand;
use commands::version::VersionCommand;
use commands::wait::WaitCommand;
use commands::wasm::WasmCommand;

/// A container engine for Linux containers and WebAssembly
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    disable_version_flag = true,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Run 'berth COMMAND --help' for more information on a command."
)]
struct Cli {
    #[command(flatten)]
    globals: GlobalOpts,

    #[command(subcommand)]
    command: Command,
}

/// The options that come before the subcommand.
#[derive(clap::Args, Debug)]
struct GlobalOpts {
    /// Daemon socket to connect to: unix:///path or tcp://host:port
    #[arg(short = 'H', long, env = "BERTH_HOST", value_name = "HOST", default_value = DEFAULT_HOST)]
    host: Host,

    /// Print each API request with its status and latency to stderr
    #[arg(short = 'D', long)]
    debug: bool,

    /// Print version information and quit
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: (),
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(RunCommand),
    Exec(ExecCommand),
    Stats(StatsCommand),
    Ps(PsCommand),
    Logs(LogsCommand),
    Images(ImagesCommand),
    Load(LoadCommand),
    Import(ImportCommand),
    Save(SaveCommand),
    Inspect(InspectCommand),
    Create(CreateCommand),
    Start(StartCommand),
    Attach(AttachCommand),
    Stop(StopCommand),
    Restart(RestartCommand),
    Kill(KillCommand),
    Rm(RmCommand),
    Wait(WaitCommand),
    Rmi(RmiCommand),
    Tag(TagCommand),
    Pull(PullCommand),
    Push(PushCommand),
    Login(LoginCommand),
    Logout(LogoutCommand),
    Cp(CpCommand),
    Export(ExportCommand),
    Diff(DiffCommand),
    Commit(CommitCommand),
    Rename(RenameCommand),
    Pause(PauseCommand),
    Unpause(UnpauseCommand),
    Top(TopCommand),
    Update(UpdateCommand),
    Events(EventsCommand),
    Version(VersionCommand),
    Info(InfoCommand),
    #[command(subcommand)]
    Container(ContainerCommand),
    #[command(subcommand)]
    Image(ImageCommand),
    #[command(subcommand)]
    Wasm(WasmCommand),
    #[command(subcommand)]
    System(SystemCommand),
}

impl Command {
    async fn execute(self, client: &Client) -> anyhow::Result<i32> {
        match self {
            Command::Run(c) => c.execute(client).await,
            Command::Exec(c) => c.execute(client).await,
            Command::Stats(c) => c.execute(client).await,
            Command::Ps(c) => c.execute(client).await,
            Command::Logs(c) => c.execute(client).await,
            Command::Images(c) => c.execute(client).await,
            Command::Load(c) => c.execute(client).await,
            Command::Import(c) => c.execute(client).await,
            Command::Save(c) => c.execute(client).await,
            Command::Inspect(c) => c.execute(client).await,
            Command::Create(c) => c.execute(client).await,
            Command::Start(c) => c.execute(client).await,
            Command::Attach(c) => c.execute(client).await,
            Command::Stop(c) => c.execute(client).await,
            Command::Restart(c) => c.execute(client).await,
            Command::Kill(c) => c.execute(client).await,
            Command::Rm(c) => c.execute(client).await,
            Command::Wait(c) => c.execute(client).await,
            Command::Rmi(c) => c.execute(client).await,
            Command::Tag(c) => c.execute(client).await,
            Command::Pull(c) => c.execute(client).await,
            Command::Push(c) => c.execute(client).await,
            Command::Login(c) => c.execute(client).await,
            Command::Logout(c) => c.execute(client).await,
            Command::Cp(c) => c.execute(client).await,
            Command::Export(c) => c.execute(client).await,
            Command::Diff(c) => c.execute(client).await,
            Command::Commit(c) => c.execute(client).await,
            Command::Rename(c) => c.execute(client).await,
            Command::Pause(c) => c.execute(client).await,
            Command::Unpause(c) => c.execute(client).await,
            Command::Top(c) => c.execute(client).await,
            Command::Update(c) => c.execute(client).await,
            Command::Events(c) => c.execute(client).await,
            Command::Version(c) => c.execute(client).await,
            Command::Info(c) => c.execute(client).await,
            Command::Container(c) => c.execute(client).await,
            Command::Image(c) => c.execute(client).await,
            Command::Wasm(c) => c.execute(client).await,
            Command::System(c) => c.execute(client).await,
        }
    }
}

/// Whether the error is a write to a closed stdout (`berth ps | head -1`),
/// which ends the program quietly with status 0, as ripgrep does.
/// `ClientError` has no `source()`, so a socket EPIPE never matches here.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `Cli::try_parse`, with a fast path for `berth run`: clap builds the
/// definition of every command before it parses (about 0.6 ms here, a
/// fifth of a Wasm `run --rm`), so a `run` is parsed against the global
/// options and `run`'s own only. The result is the same (see the tests).
fn parse(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{Args, FromArgMatches};
    if subcommand_name(&args) != Some("run") {
        return Cli::try_parse_from(args);
    }
    let run = RunCommand::augment_args(clap::Command::new("run"));
    let root = clap::Command::new("berth")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_version_flag(true)
        .max_term_width(100)
        .subcommand_required(true)
        .subcommand(run);
    let root = <GlobalOpts as Args>::augment_args(root);
    let matches = root.try_get_matches_from(args)?;
    Ok(Cli {
        globals: GlobalOpts::from_arg_matches(&matches)?,
        command: Command::from_arg_matches(&matches)?,
    })
}

/// The subcommand's name: the first argument that is not a global option
/// (`-H HOST`, `--host HOST`, `-D`; see [`Cli`]).
fn subcommand_name(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        match a {
            "-H" | "--host" => {
                it.next();
            }
            "-D" | "--debug" => {}
            _ if a.starts_with("--host=") || (a.starts_with("-H") && a.len() > 2) => {}
            _ if a.starts_with('-') => return None,
            _ => return Some(a),
        }
    }
    None
}

fn main() {
    let cli = match parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // Docker's status for bad flags and arguments.
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let client = Client::new(cli.globals.host, cli.globals.debug);
    let code = match runtime.block_on(cli.command.execute(&client)) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    };
    let _ = io::stdout().flush();
    // Exit without tearing the runtime down: a blocking read of stdin
    // (`run -i`) may still be parked on a worker thread.
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn host_comes_from_flag_or_default() {
        let cli = Cli::try_parse_from(["berth", "-H", "tcp://h:1", "ps"]).unwrap();
        assert_eq!(cli.globals.host.to_string(), "tcp://h:1");
        let cli = Cli::try_parse_from(["berth", "ps", "-a"]).unwrap();
        if std::env::var_os("BERTH_HOST").is_none() {
            assert_eq!(cli.globals.host.to_string(), DEFAULT_HOST);
        }
        assert!(Cli::try_parse_from(["berth", "-H", "ssh://x", "ps"]).is_err());
    }

    #[test]
    fn aliases_parse() {
        for args in [
            &["berth", "image", "ls"][..],
            &["berth", "image", "list", "-q"],
            &["berth", "container", "ps", "-a"],
            &["berth", "container", "rm", "-f", "x"],
            &["berth", "image", "rm", "x"],
            &["berth", "image", "inspect", "-f", "{{.Id}}", "x"],
            &["berth", "inspect", "--type", "image", "x"],
            &["berth", "wasm", "import", "hello.wasm", "hello:latest"],
            &["berth", "stop", "-t", "3", "a", "b"],
            &["berth", "stop", "--time", "3", "a"],
            &["berth", "logs", "-f", "--tail", "10", "x"],
            &["berth", "save", "-o", "x.tar", "a", "b"],
            &["berth", "top", "x", "-o", "pid,comm"],
            &["berth", "update", "-m", "64m", "--cpus", "0.5", "x"],
            &[
                "berth",
                "events",
                "--since",
                "10m",
                "-f",
                "type=container",
                "--format",
                "{{json .}}",
            ],
            &["berth", "container", "prune", "-f"],
            &["berth", "image", "prune", "-af"],
            &["berth", "system", "df"],
            &["berth", "container", "rename", "a", "b"],
            &["berth", "container", "pause", "a"],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn run_fast_path_parses_as_the_full_definition_does() {
        let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        for args in [
            &["berth", "run", "--rm", "busybox", "/bin/true"][..],
            &[
                "berth",
                "-H",
                "tcp://h:1",
                "run",
                "-d",
                "--name",
                "x",
                "img",
            ],
            &[
                "berth",
                "--host=unix:///s",
                "-D",
                "run",
                "-it",
                "-e",
                "A=1",
                "img",
                "sh",
                "-c",
                "echo hi",
            ],
            &[
                "berth",
                "run",
                "-m",
                "64m",
                "--cpus",
                "0.5",
                "--restart",
                "on-failure:3",
                "img",
            ],
            &[
                "berth",
                "run",
                "--entrypoint",
                "/x",
                "-u",
                "1:1",
                "-w",
                "/w",
                "img",
                "--rm",
            ],
            &[
                "berth",
                "run",
                "--platform",
                "wasi/wasm",
                "-h",
                "host",
                "img",
                "a",
                "-b",
            ],
        ] {
            assert_eq!(subcommand_name(&os(args)), Some("run"), "{args:?}");
            let fast = parse(os(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let full = Cli::try_parse_from(args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{args:?}");
        }
        // Errors are errors either way, with Docker's status for them.
        for args in [
            &["berth", "run"][..],
            &["berth", "run", "--no-such-flag", "img"],
            &["berth", "run", "-m"],
        ] {
            let fast = parse(os(args)).expect_err("fast");
            let full = Cli::try_parse_from(args).expect_err("full");
            assert_eq!(fast.kind(), full.kind(), "{args:?}");
        }
        assert_eq!(subcommand_name(&os(&["berth", "ps"])), Some("ps"));
        assert_eq!(subcommand_name(&os(&["berth", "--version"])), None);
        assert_eq!(
            subcommand_name(&os(&["berth", "-H", "run", "ps"])),
            Some("ps")
        );
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
