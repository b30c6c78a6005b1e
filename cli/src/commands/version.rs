//! `berth version`: the client's version, then the daemon's (`GET /version`).

use std::io::Write;

use anyhow::Result;
use berth_api_types::API_VERSION;
use berth_api_types::system::Version;
use clap::Args;

use crate::client::Client;

/// Show the berth version information
#[derive(Args, Debug)]
pub struct VersionCommand {}

/// Go's GOARCH spelling of this machine's architecture, as docker prints it.
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `key:` padded to docker's version column (tabwriter minwidth 20, padding 1).
fn kv(out: &mut String, key: &str, value: &str) {
    let width = (key.chars().count() + 1).max(20);
    out.push_str(&format!("{key:<width$}{value}\n"));
}

pub fn client_section() -> String {
    let mut s = String::from("Client:\n");
    kv(&mut s, " Version:", env!("CARGO_PKG_VERSION"));
    kv(&mut s, " API version:", API_VERSION);
    kv(
        &mut s,
        " OS/Arch:",
        &format!(
            "{}/{}",
            std::env::consts::OS,
            go_arch(std::env::consts::ARCH)
        ),
    );
    s
}

fn server_section(v: &Version) -> String {
    let mut s = String::from("\nServer:");
    if !v.platform.name.is_empty() {
        s.push(' ');
        s.push_str(&v.platform.name);
    }
    s.push_str("\n Engine:\n");
    kv(&mut s, "  Version:", &v.version);
    let api = if v.min_api_version.is_empty() {
        v.api_version.clone()
    } else {
        format!("{} (minimum version {})", v.api_version, v.min_api_version)
    };
    kv(&mut s, "  API version:", &api);
    if !v.go_version.is_empty() {
        kv(&mut s, "  Go version:", &v.go_version);
    }
    if !v.git_commit.is_empty() {
        kv(&mut s, "  Git commit:", &v.git_commit);
    }
    if !v.build_time.is_empty() {
        kv(&mut s, "  Built:", &v.build_time);
    }
    kv(&mut s, "  OS/Arch:", &format!("{}/{}", v.os, v.arch));
    if !v.kernel_version.is_empty() {
        kv(&mut s, "  Kernel version:", &v.kernel_version);
    }
    kv(&mut s, "  Experimental:", &v.experimental.to_string());
    for c in &v.components {
        if c.name == "Engine" {
            continue;
        }
        s.push_str(&format!(" {}:\n", c.name));
        kv(&mut s, "  Version:", &c.version);
        for (k, val) in &c.details {
            kv(&mut s, &format!("  {k}:"), val);
        }
    }
    s
}

impl VersionCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut out = std::io::stdout().lock();
        out.write_all(client_section().as_bytes())?;
        out.flush()?;
        let v = client.version().await?;
        out.write_all(server_section(&v).as_bytes())?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_section_layout() {
        let v = Version {
            version: "0.1.0".into(),
            api_version: "1.47".into(),
            min_api_version: "1.24".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            components: vec![berth_api_types::system::Component {
                name: "wasmtime".into(),
                version: "48.0.0".into(),
                details: Default::default(),
            }],
            ..Default::default()
        };
        let s = server_section(&v);
        assert!(
            s.contains("\n  API version:      1.47 (minimum version 1.24)\n"),
            "{s}"
        );
        assert!(
            s.contains("\n wasmtime:\n  Version:          48.0.0\n"),
            "{s}"
        );
    }
}
