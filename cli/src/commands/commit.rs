//! `berth commit`: a new image from a container's changes, as `docker
//! commit` makes one. For a Wasm container the image is its module with
//! the updated config (berthd refuses while the container's directory
//! holds files, which a Wasm image cannot carry).

use anyhow::{Result, bail};
use berth_api_types::reference;
use clap::{ArgAction, Args};

use crate::client::{Client, CommitOptions};

/// Create a new image from a container's changes
#[derive(Args, Debug)]
#[command(
    after_help = "Instructions for --change: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, \
    STOPSIGNAL, USER, VOLUME, WORKDIR."
)]
pub struct CommitCommand {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "AUTHOR")]
    pub author: Option<String>,

    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,

    /// Commit message
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Pause container during commit (accepted; berth reads the changes as they are)
    #[arg(short = 'p', long, default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub pause: bool,

    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Name and optionally a tag for the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

impl CommitCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let (repo, tag) = match &self.reference {
            Some(r) if r.contains('@') => {
                bail!("refusing to create a tag with a digest reference: {r}")
            }
            Some(r) => {
                // `REPOSITORY[:TAG]` apart, as the docker CLI sends them.
                let parts = reference::split(r);
                (Some(parts.name), parts.tag)
            }
            None => (None, None),
        };
        let opts = CommitOptions {
            container: &self.container,
            repo,
            tag,
            comment: self.message.as_deref(),
            author: self.author.as_deref(),
            changes: &self.changes,
            pause: self.pause,
        };
        let id = client.container_commit(&opts).await?;
        println!("{id}");
        Ok(0)
    }
}
