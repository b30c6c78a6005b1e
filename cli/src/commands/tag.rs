//! `berth tag` / `berth image tag`: give an image another name.

use anyhow::Result;
use clap::Args;

use crate::client::Client;
use crate::opts::tag_target;

/// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
#[derive(Args, Debug)]
pub struct TagCommand {
    /// The image to tag (name, name:tag or ID)
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,

    /// The new name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

impl TagCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let (repo, tag) = tag_target(&self.target).map_err(anyhow::Error::msg)?;
        client.image_tag(&self.source, &repo, &tag).await?;
        Ok(0)
    }
}
