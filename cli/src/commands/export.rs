//! `berth export`: a container's filesystem as a tar archive, to a file or
//! stdout, as `docker export` writes it.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::client::{Client, ResponseStream};

/// Export a container's filesystem as a tar archive
#[derive(Args, Debug)]
pub struct ExportCommand {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

impl ExportCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        if self.output.is_none() && std::io::stdout().is_terminal() {
            bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        }
        let mut stream = client.container_export(&self.container).await?;
        match &self.output {
            None => {
                let mut out = std::io::stdout().lock();
                copy(&mut stream, &mut out).await?;
                out.flush()?;
            }
            Some(path) => export_to_file(&mut stream, path).await?,
        }
        Ok(0)
    }
}

async fn copy(stream: &mut ResponseStream, out: &mut impl Write) -> Result<()> {
    while let Some(chunk) = stream
        .chunk()
        .await
        .context("reading the container's archive")?
    {
        out.write_all(&chunk)?;
    }
    Ok(())
}

/// Writes beside `path` and renames into place, so an interrupted export
/// never leaves a truncated archive under the name.
async fn export_to_file(stream: &mut ResponseStream, path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".berth_export_{}", std::process::id()));
    let result = async {
        let mut f = fs::File::create(&tmp)
            .with_context(|| format!("failed to export container: create {}", tmp.display()))?;
        copy(stream, &mut f).await?;
        f.sync_all()?;
        fs::rename(&tmp, path)
            .with_context(|| format!("failed to export container: rename to {}", path.display()))?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
