//! `berth container ...`: the management-command spelling of the container
//! commands.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::attach::AttachCommand;
use super::create::CreateCommand;
use super::inspect::{self, InspectArgs, Kind};
use super::kill::KillCommand;
use super::logs::LogsCommand;
use super::pause::{PauseCommand, UnpauseCommand};
use super::prune::ContainerPruneCommand;
use super::ps::PsCommand;
use super::rename::RenameCommand;
use super::restart::RestartCommand;
use super::rm::RmCommand;
use super::run::RunCommand;
use super::start::StartCommand;
use super::stop::StopCommand;
use super::top::TopCommand;
use super::update::UpdateCommand;
use super::wait::WaitCommand;
use crate::client::Client;

/// Manage containers
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsCommand),
    Run(RunCommand),
    Create(CreateCommand),
    Start(StartCommand),
    Attach(AttachCommand),
    Stop(StopCommand),
    Restart(RestartCommand),
    Kill(KillCommand),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmCommand),
    Wait(WaitCommand),
    Logs(LogsCommand),
    Inspect(ContainerInspectCommand),
    Rename(RenameCommand),
    Pause(PauseCommand),
    Unpause(UnpauseCommand),
    Top(TopCommand),
    Update(UpdateCommand),
    Prune(ContainerPruneCommand),
}

/// Display detailed information on one or more containers
#[derive(Args, Debug)]
#[command(after_help = inspect::FORMAT_HELP)]
pub struct ContainerInspectCommand {
    #[command(flatten)]
    pub common: InspectArgs,
}

impl ContainerCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match self {
            ContainerCommand::Ls(c) => c.execute(client).await,
            ContainerCommand::Run(c) => c.execute(client).await,
            ContainerCommand::Create(c) => c.execute(client).await,
            ContainerCommand::Start(c) => c.execute(client).await,
            ContainerCommand::Attach(c) => c.execute(client).await,
            ContainerCommand::Stop(c) => c.execute(client).await,
            ContainerCommand::Restart(c) => c.execute(client).await,
            ContainerCommand::Kill(c) => c.execute(client).await,
            ContainerCommand::Rm(c) => c.execute(client).await,
            ContainerCommand::Wait(c) => c.execute(client).await,
            ContainerCommand::Logs(c) => c.execute(client).await,
            ContainerCommand::Inspect(c) => {
                inspect::run(client, Some(Kind::Container), c.common).await
            }
            ContainerCommand::Rename(c) => c.execute(client).await,
            ContainerCommand::Pause(c) => c.execute(client).await,
            ContainerCommand::Unpause(c) => c.execute(client).await,
            ContainerCommand::Top(c) => c.execute(client).await,
            ContainerCommand::Update(c) => c.execute(client).await,
            ContainerCommand::Prune(c) => c.execute(client).await,
        }
    }
}
