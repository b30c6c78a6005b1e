//! `berth info`: a summary of the daemon (`GET /info`), docker's layout plus
//! berth's Wasm section.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;
use berth_api_types::system::Info;
use clap::Args;

use crate::client::Client;
use crate::format::units::bytes_size;

/// Display system-wide information
#[derive(Args, Debug)]
pub struct InfoCommand {}

impl InfoCommand {
    pub async fn execute(self, client: &Client) -> Result<i32> {
        let mut out = std::io::stdout().lock();
        let head = format!(
            "Client:\n Version:    {}\n Debug Mode: {}\n\n",
            env!("CARGO_PKG_VERSION"),
            client.debug()
        );
        out.write_all(head.as_bytes())?;
        out.flush()?;
        let info = client.info().await?;
        out.write_all(render(&info).as_bytes())?;
        out.flush()?;
        for w in &info.warnings {
            eprintln!("WARNING: {w}");
        }
        Ok(0)
    }
}

fn render(i: &Info) -> String {
    let mut s = String::from("Server:\n");
    fn kv(s: &mut String, indent: usize, key: &str, value: &dyn std::fmt::Display) {
        let _ = writeln!(s, "{:indent$}{key}: {value}", "");
    }
    macro_rules! line {
        ($indent:expr, $key:expr, $value:expr $(,)?) => {
            kv(&mut s, $indent, $key, $value)
        };
    }
    line!(1, "Containers", &i.containers);
    line!(2, "Running", &i.containers_running);
    line!(2, "Paused", &i.containers_paused);
    line!(2, "Stopped", &i.containers_stopped);
    line!(1, "Images", &i.images);
    line!(1, "Server Version", &i.server_version);
    line!(1, "Storage Driver", &i.driver);
    for [k, v] in &i.driver_status {
        line!(2, k, v);
    }
    line!(1, "Logging Driver", &i.logging_driver);
    line!(1, "Cgroup Driver", &i.cgroup_driver);
    line!(1, "Cgroup Version", &i.cgroup_version);
    let mut runtimes: Vec<&String> = i.runtimes.keys().collect();
    runtimes.sort();
    line!(
        1,
        "Runtimes",
        &runtimes
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    line!(1, "Default Runtime", &i.default_runtime);
    if !i.security_options.is_empty() {
        let _ = writeln!(s, " Security Options:");
        for opt in &i.security_options {
            // "name=seccomp,profile=builtin" -> "  seccomp\n   Profile: builtin"
            for (n, kv) in opt.split(',').enumerate() {
                let (k, v) = kv.split_once('=').unwrap_or(("name", kv));
                if n == 0 || k == "name" {
                    let _ = writeln!(s, "  {v}");
                } else {
                    let _ = writeln!(s, "   {}: {v}", capitalize(k));
                }
            }
        }
    }
    line!(1, "Kernel Version", &i.kernel_version);
    line!(1, "Operating System", &i.operating_system);
    line!(1, "OSType", &i.os_type);
    line!(1, "Architecture", &i.architecture);
    line!(1, "CPUs", &i.ncpu);
    line!(1, "Total Memory", &bytes_size(i.mem_total));
    line!(1, "Name", &i.name);
    line!(1, "ID", &i.id);
    line!(1, "Docker Root Dir", &i.docker_root_dir);
    line!(1, "Debug Mode", &i.debug);
    if i.debug {
        line!(2, "File Descriptors", &i.n_fd);
        line!(2, "Tasks", &i.n_goroutines);
        line!(2, "System Time", &i.system_time);
    }
    line!(1, "Experimental", &i.experimental_build);
    if !i.labels.is_empty() {
        let _ = writeln!(s, " Labels:");
        for l in &i.labels {
            let _ = writeln!(s, "  {l}");
        }
    }
    line!(1, "Live Restore Enabled", &i.live_restore_enabled);
    let w = &i.wasm;
    let _ = writeln!(s, " Wasm:");
    line!(2, "Engine", &w.engine);
    line!(2, "Version", &w.version);
    line!(2, "Targets", &w.targets.join(" "));
    line!(2, "Pool Slots", &w.pool_slots);
    line!(2, "Running", &w.running);
    if !w.compiled_cache_dir.is_empty() {
        line!(2, "Compiled Cache", &w.compiled_cache_dir);
    }
    s
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_summary() {
        let mut i = Info {
            containers: 3,
            containers_running: 1,
            containers_stopped: 2,
            mem_total: 33_352_704_000,
            security_options: vec![
                "name=seccomp,profile=builtin".into(),
                "name=cgroupns".into(),
            ],
            ..Default::default()
        };
        i.runtimes.insert("runc".into(), serde_json::json!({}));
        i.runtimes.insert("crun".into(), serde_json::json!({}));
        i.wasm.engine = "wasmtime".into();
        i.wasm.targets = vec!["wasip1".into(), "wasip2".into()];
        i.wasm.pool_slots = 1000;
        let s = render(&i);
        assert!(
            s.starts_with("Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n"),
            "{s}"
        );
        assert!(s.contains(" Runtimes: crun runc\n"), "{s}");
        assert!(s.contains(" Debug Mode: false\n Experimental"), "{s}");
        i.debug = true;
        i.n_fd = 12;
        assert!(render(&i).contains(" Debug Mode: true\n  File Descriptors: 12\n"));
        assert!(s.contains(" Total Memory: 31.06GiB\n"), "{s}");
        assert!(
            s.contains(" Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n"),
            "{s}"
        );
        assert!(s.contains(" Wasm:\n  Engine: wasmtime\n  Version: \n  Targets: wasip1 wasip2\n  Pool Slots: 1000\n"), "{s}");
    }
}
