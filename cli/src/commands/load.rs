//! `berth load`: load images from a tar archive (file or stdin).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hyper::header::CONTENT_TYPE;

use crate::client::{Client, body};
use crate::output::JsonMessagePrinter;

/// Load an image from a tar archive or STDIN
#[derive(Args, Debug)]
pub struct LoadCommand {
    /// Read from a tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl LoadCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let tar = match &self.input {
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("open {}", path.display()))?;
                let len = file.metadata().await.ok().map(|m| m.len());
                body::reader(file, len)
            }
            None => {
                if std::io::stdin().is_terminal() {
                    bail!("requested load from stdin, but stdin is empty");
                }
                body::reader(tokio::io::stdin(), None)
            }
        };
        let resp = client.image_load(tar, self.quiet).await?;
        let json = resp
            .header(CONTENT_TYPE)
            .is_some_and(|ct| ct.starts_with("application/json"));
        let mut stream = resp.into_stream();
        let mut out = std::io::stdout().lock();
        let mut printer = JsonMessagePrinter::default();
        while let Some(chunk) = stream
            .chunk()
            .await
            .context("reading the daemon's answer")?
        {
            if json {
                printer.push(&chunk, &mut out)?;
            } else {
                out.write_all(&chunk)?;
            }
        }
        printer.finish()?;
        out.flush()?;
        Ok(0)
    }
}
