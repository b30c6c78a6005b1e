//! `berth push`: upload an image to a registry, with the credentials
//! `berth login` (or `docker login`) stored, showing per-layer progress as
//! `docker push` does.

use anyhow::{Result, bail};
use clap::Args;

use super::login::registry_auth_for;
use super::pull::{CliRef, Output, show_progress};
use crate::client::Client;

/// Upload an image to a registry
#[derive(Args, Debug)]
pub struct PushCommand {
    /// Push all tags of the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,

    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// The image to push
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

impl PushCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let r = CliRef::parse(&self.name)?;
        if r.digest.is_some() {
            bail!("cannot push a digest reference: {}", self.name);
        }
        let tag = match (&r.tag, self.all_tags) {
            (Some(_), true) => bail!("tag can't be used with --all-tags/-a"),
            (Some(t), false) => Some(t.clone()),
            (None, true) => None,
            (None, false) => {
                if !self.quiet {
                    println!("Using default tag: latest");
                }
                Some("latest".to_string())
            }
        };
        let auth = registry_auth_for(&r.domain);
        let resp = client
            .image_push(&r.name, tag.as_deref(), auth.as_deref())
            .await?;
        show_progress(resp, self.quiet, Output::Stdout).await?;
        if self.quiet {
            match &tag {
                Some(t) => println!("{}:{t}", r.canonical_name()),
                None => println!("{}", r.canonical_name()),
            }
        }
        Ok(0)
    }
}
