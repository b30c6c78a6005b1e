//! `berth image ...`: the management-command spelling of the image commands.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::images::ImagesCommand;
use super::import::ImportCommand;
use super::inspect::{self, InspectArgs, Kind};
use super::load::LoadCommand;
use super::prune::ImagePruneCommand;
use super::pull::PullCommand;
use super::push::PushCommand;
use super::rmi::RmiCommand;
use super::save::SaveCommand;
use super::tag::TagCommand;
use crate::client::Client;

/// Manage images
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesCommand),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiCommand),
    Inspect(ImageInspectCommand),
    Import(ImportCommand),
    Load(LoadCommand),
    Save(SaveCommand),
    Tag(TagCommand),
    Prune(ImagePruneCommand),
    Pull(PullCommand),
    Push(PushCommand),
}

/// Display detailed information on one or more images
#[derive(Args, Debug)]
#[command(after_help = inspect::FORMAT_HELP)]
pub struct ImageInspectCommand {
    #[command(flatten)]
    pub common: InspectArgs,
}

impl ImageCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        match self {
            ImageCommand::Ls(c) => c.execute(client).await,
            ImageCommand::Rm(c) => c.execute(client).await,
            ImageCommand::Inspect(c) => inspect::run(client, Some(Kind::Image), c.common).await,
            ImageCommand::Import(c) => c.execute(client).await,
            ImageCommand::Load(c) => c.execute(client).await,
            ImageCommand::Save(c) => c.execute(client).await,
            ImageCommand::Tag(c) => c.execute(client).await,
            ImageCommand::Prune(c) => c.execute(client).await,
            ImageCommand::Pull(c) => c.execute(client).await,
            ImageCommand::Push(c) => c.execute(client).await,
        }
    }
}
