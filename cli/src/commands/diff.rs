//! `berth diff`: what a container changed in its image's filesystem, one
//! `A`/`C`/`D` line per path, as `docker diff` prints it.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use crate::client::Client;

/// Inspect changes to files or directories on a container's filesystem
#[derive(Args, Debug)]
#[command(after_help = "A: added, C: changed, D: deleted")]
pub struct DiffCommand {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

impl DiffCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let changes = client.container_changes(&self.container).await?;
        let mut out = std::io::stdout().lock();
        for c in &changes {
            writeln!(out, "{} {}", c.letter(), c.path)?;
        }
        out.flush()?;
        Ok(0)
    }
}
