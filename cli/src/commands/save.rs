//! `berth save`: write images as a tar archive (to a file or stdout).

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::client::{Client, ResponseStream};

/// Save one or more images to a tar archive (streamed to STDOUT by default)
#[derive(Args, Debug)]
pub struct SaveCommand {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

impl SaveCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        if self.output.is_none() && std::io::stdout().is_terminal() {
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        }
        let mut stream = client.image_save(&self.images).await?;
        match &self.output {
            None => {
                let mut out = std::io::stdout().lock();
                copy(&mut stream, &mut out).await?;
                out.flush()?;
            }
            Some(path) => save_to_file(&mut stream, path).await?,
        }
        Ok(0)
    }
}

async fn copy(stream: &mut ResponseStream, out: &mut impl Write) -> Result<()> {
    while let Some(chunk) = stream.chunk().await.context("reading the image archive")? {
        out.write_all(&chunk)?;
    }
    Ok(())
}

/// Writes to a temporary file beside `path` and renames it into place, so
/// an interrupted save never leaves a truncated archive under the name.
async fn save_to_file(stream: &mut ResponseStream, path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".berth_temp_{}", std::process::id()));
    let result = async {
        let mut f = fs::File::create(&tmp)
            .with_context(|| format!("failed to save image: create {}", tmp.display()))?;
        copy(stream, &mut f).await?;
        f.sync_all()?;
        fs::rename(&tmp, path)
            .with_context(|| format!("failed to save image: rename to {}", path.display()))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
