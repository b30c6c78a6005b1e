//! `berth images` / `berth image ls`: list images in docker's table.

use std::io::Write;

use anyhow::Result;
use berth_api_types::image::Summary;
use clap::Args;

use crate::client::Client;
use crate::format::short_id;
use crate::format::table::Table;
use crate::format::units::{ago, human_size};
use crate::opts::{filters_json, split_tag};

/// List images
#[derive(Args, Debug)]
pub struct ImagesCommand {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Show digests
    #[arg(long)]
    pub digests: bool,

    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,

    /// Filter output based on conditions provided (KEY=VALUE, repeatable)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Only images matching this reference
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// One table row: an image under one of its names.
#[derive(Debug, PartialEq)]
struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: i64,
    size: i64,
}

impl ImagesCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut filter = self.filter.clone();
        if let Some(r) = &self.reference {
            filter.push(format!("reference={r}"));
        }
        let filters = filters_json(&filter).map_err(anyhow::Error::msg)?;
        let list = client
            .image_list(self.all, self.digests, filters.as_deref())
            .await?;
        let rows = rows(&list);
        let mut out = std::io::stdout().lock();
        let id = |r: &Row| {
            if self.no_trunc {
                r.id.clone()
            } else {
                short_id(&r.id)
            }
        };
        if self.quiet {
            for r in &rows {
                writeln!(out, "{}", id(r))?;
            }
            return Ok(0);
        }
        let mut header = vec!["REPOSITORY", "TAG"];
        if self.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        let mut t = Table::new(&header);
        let now = chrono::Utc::now();
        for r in &rows {
            let mut cells = vec![r.repository.clone(), r.tag.clone()];
            if self.digests {
                cells.push(r.digest.clone());
            }
            cells.extend([id(r), ago(r.created, now), human_size(r.size)]);
            t.push(cells);
        }
        t.write_to(&mut out)?;
        Ok(0)
    }
}

/// One row per repo:tag; `<none>` for what an image lacks.
fn rows(list: &[Summary]) -> Vec<Row> {
    let mut rows = Vec::new();
    for img in list {
        let digest_of = |repo: &str| {
            img.repo_digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, dg)| dg.to_string())
                })
                .unwrap_or_else(|| "<none>".to_string())
        };
        let row = |repository: &str, tag: &str, digest: String| Row {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
            id: img.id.clone(),
            created: img.created,
            size: img.size,
        };
        let tags: Vec<&String> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .collect();
        if !tags.is_empty() {
            for t in tags {
                let (repo, tag) = split_tag(t);
                rows.push(row(repo, tag.unwrap_or("<none>"), digest_of(repo)));
            }
        } else if !img.repo_digests.is_empty() {
            for d in &img.repo_digests {
                let (repo, dg) = d.split_once('@').unwrap_or(("<none>", d));
                rows.push(row(repo, "<none>", dg.to_string()));
            }
        } else {
            rows.push(row("<none>", "<none>", "<none>".to_string()));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag_and_none() {
        let list = vec![
            Summary {
                id: "sha256:aaaaaaaaaaaaaaaa".into(),
                repo_tags: vec!["hello:latest".into(), "localhost:5000/hello:v1".into()],
                repo_digests: vec!["localhost:5000/hello@sha256:dd".into()],
                size: 1_234_567,
                ..Default::default()
            },
            Summary {
                id: "sha256:bbbbbbbbbbbbbbbb".into(),
                ..Default::default()
            },
        ];
        let r = rows(&list);
        assert_eq!(r.len(), 3);
        assert_eq!(
            (
                r[0].repository.as_str(),
                r[0].tag.as_str(),
                r[0].digest.as_str()
            ),
            ("hello", "latest", "<none>")
        );
        assert_eq!(
            (
                r[1].repository.as_str(),
                r[1].tag.as_str(),
                r[1].digest.as_str()
            ),
            ("localhost:5000/hello", "v1", "sha256:dd")
        );
        assert_eq!(
            (r[2].repository.as_str(), r[2].tag.as_str()),
            ("<none>", "<none>")
        );
    }
}
