//! From Docker's create request to what runs: merge the request with the
//! image's defaults as Docker does, refuse options the chosen executor cannot
//! honour (saying so, never ignoring them silently), and produce the OCI
//! runtime spec the executor consumes. Docker-isms stop here.

use crate::error::{Error, Result, ResultExt};
use crate::image::ExecutorKind;
use berth_api_types::container::{Config, CreateRequest, HostConfig};
use oci_spec::runtime::{
    LinuxBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder,
};

/// Restart policies Docker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    UnlessStopped,
    OnFailure { max_retries: i64 },
}

impl Restart {
    pub fn parse(host: &HostConfig) -> Result<Restart> {
        let p = &host.restart_policy;
        let r = match p.name.as_str() {
            "" | "no" => Restart::No,
            "always" => Restart::Always,
            "unless-stopped" => Restart::UnlessStopped,
            "on-failure" => Restart::OnFailure {
                max_retries: p.maximum_retry_count,
            },
            other => {
                return Err(Error::invalid(format!(
                    "invalid restart policy '{other}': use no, always, unless-stopped or on-failure[:max-retries]"
                )));
            }
        };
        if p.maximum_retry_count < 0 {
            return Err(Error::invalid(
                "invalid restart policy: maximum retry count can't be negative",
            ));
        }
        if p.maximum_retry_count > 0 && !matches!(r, Restart::OnFailure { .. }) {
            return Err(Error::invalid(format!(
                "invalid restart policy: maximum retry count can only be used with 'on-failure', not '{}'",
                p.name
            )));
        }
        Ok(r)
    }
}

/// Runtime names that select the Wasm executor, as Docker users spell them.
pub const WASM_RUNTIMES: &[&str] = &[
    "wasm",
    "wasmtime",
    "io.containerd.wasmtime.v1",
    "io.containerd.wasmtime.v2",
    "berth-wasm",
];

/// The executor a container gets: the image's choice, unless `--runtime`
/// names one.
pub fn choose_executor(image: ExecutorKind, runtime: &str) -> Result<ExecutorKind> {
    match runtime {
        "" | "berth" => Ok(image),
        r if WASM_RUNTIMES.contains(&r) => {
            if image == ExecutorKind::Wasm {
                Ok(ExecutorKind::Wasm)
            } else {
                Err(Error::invalid(format!(
                    "runtime {r} runs Wasm images, but this image holds a Linux root filesystem"
                )))
            }
        }
        other => Err(Error::invalid(format!(
            "unknown runtime specified {other}: berth knows berth (default) and, for Wasm images, {}",
            WASM_RUNTIMES.join(", ")
        ))),
    }
}

/// Merges the create request with the image config as Docker does.
pub fn merge(request: &CreateRequest, image: &Config) -> Config {
    let user = &request.config;
    let mut c = user.clone();
    // Env: the image's, then the request's; a request variable replaces the
    // image's variable of the same name.
    let mut env: Vec<String> = image.env.clone();
    for kv in &user.env {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    c.env = env;
    match &user.entrypoint {
        // An entrypoint given with the request drops the image's Cmd too.
        Some(ep) => {
            c.entrypoint = if ep.len() == 1 && ep[0].is_empty() {
                None
            } else {
                Some(ep.clone())
            };
            c.cmd = user.cmd.clone().filter(|v| !v.is_empty());
        }
        None => {
            c.entrypoint = image.entrypoint.clone().filter(|v| !v.is_empty());
            c.cmd = user
                .cmd
                .clone()
                .filter(|v| !v.is_empty())
                .or_else(|| image.cmd.clone());
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone();
    }
    if c.stop_timeout.is_none() {
        c.stop_timeout = image.stop_timeout;
    }
    let mut labels = image.labels.clone();
    labels.extend(user.labels.clone());
    c.labels = labels;
    for (mine, theirs) in [
        (&mut c.exposed_ports, &image.exposed_ports),
        (&mut c.volumes, &image.volumes),
    ] {
        if let Some(t) = theirs {
            let m = mine.get_or_insert_with(Default::default);
            for (k, v) in t {
                m.entry(k.clone()).or_insert(v.clone());
            }
        }
    }
    c
}

/// The full argv: Entrypoint then Cmd; `argv0` goes first when the image
/// names no program (a Wasm artifact, whose module is the program).
pub fn argv(config: &Config, argv0: Option<&str>) -> Result<Vec<String>> {
    let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
    if argv.is_empty()
        && let Some(a) = argv0
    {
        argv.push(a.to_string());
    }
    argv.extend(config.cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        return Err(Error::invalid(
            "no command specified: the image has no Entrypoint or Cmd; give a command after the image name",
        ));
    }
    Ok(argv)
}

/// Refuses options the executor cannot honour. Returns warnings for
/// options that have no meaning there but are harmless.
pub fn check_supported(
    kind: ExecutorKind,
    config: &Config,
    host: &HostConfig,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if host.memory < 0 {
        return Err(Error::invalid("invalid memory limit: it can't be negative"));
    }
    let restart = Restart::parse(host)?;
    if host.auto_remove && restart != Restart::No {
        return Err(Error::invalid(
            "can't create 'AutoRemove' container with restart policy: use either --rm or --restart",
        ));
    }
    match host.log_config.kind.as_str() {
        "" | "json-file" => {}
        other => {
            return Err(Error::not_implemented(format!(
                "log driver {other} is not supported: berth logs in Docker's json-file format"
            )));
        }
    }
    if !host.binds.is_empty() || !host.mounts.is_empty() || !host.tmpfs.is_empty() {
        return Err(Error::not_implemented(
            "volumes and bind mounts (-v, --mount, --tmpfs) are not supported yet",
        ));
    }
    if has_port_bindings(host) || host.publish_all_ports {
        return Err(Error::not_implemented(
            "publishing ports (-p, -P) needs container networking, which berth does not implement yet",
        ));
    }
    match host.network_mode.as_str() {
        "" | "default" | "bridge" | "none" => {}
        other => {
            return Err(Error::not_implemented(format!(
                "network mode {other} is not supported yet"
            )));
        }
    }
    if kind == ExecutorKind::Wasm {
        let wasm_refuses = |what: &str| {
            Err(Error::invalid(format!(
                "{what} has no meaning for a Wasm container: a module runs in wasmtime's sandbox, not as a Linux process"
            )))
        };
        if host.privileged {
            return wasm_refuses("--privileged");
        }
        if !host.cap_add.is_empty() || !host.cap_drop.is_empty() {
            return wasm_refuses("--cap-add/--cap-drop");
        }
        if !host.devices.is_empty() {
            return wasm_refuses("--device");
        }
        if host.nano_cpus != 0 || host.cpu_quota != 0 || host.cpu_shares != 0 {
            return Err(Error::not_implemented(
                "CPU limits (--cpus, --cpu-shares, --cpu-quota) are not supported for Wasm containers yet",
            ));
        }
        if host.memory != 0 && host.memory < 65536 {
            return Err(Error::invalid(
                "memory limit too small: a Wasm container needs at least one 64 KiB page (--memory 64k)",
            ));
        }
        if !config.user.is_empty() {
            warnings.push(format!(
                "user {:?} is ignored: a Wasm container has no users",
                config.user
            ));
        }
        if !host.security_opt.is_empty() {
            warnings.push(
                "security options are ignored: a Wasm container is confined by wasmtime's sandbox"
                    .into(),
            );
        }
    }
    Ok(warnings)
}

fn has_port_bindings(host: &HostConfig) -> bool {
    host.port_bindings
        .values()
        .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
}

/// The OCI runtime spec for a container.
pub fn oci_spec(
    argv: &[String],
    config: &Config,
    host: &HostConfig,
    rootfs: &std::path::Path,
) -> Result<Spec> {
    let cwd = if config.working_dir.is_empty() {
        "/".to_string()
    } else {
        config.working_dir.clone()
    };
    let process = ProcessBuilder::default()
        .args(argv.to_vec())
        .env(config.env.clone())
        .cwd(cwd)
        .terminal(config.tty)
        .build()
        .ctx("building the process spec")?;
    let mut linux = LinuxBuilder::default();
    if host.memory > 0 {
        let memory = LinuxMemoryBuilder::default()
            .limit(host.memory)
            .build()
            .ctx("building the memory spec")?;
        linux = linux.resources(
            LinuxResourcesBuilder::default()
                .memory(memory)
                .build()
                .ctx("building the resources spec")?,
        );
    }
    SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(host.readonly_rootfs)
                .build()
                .ctx("building the root spec")?,
        )
        .hostname(config.hostname.clone())
        .linux(linux.build().ctx("building the linux spec")?)
        .build()
        .ctx("building the runtime spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> CreateRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn merge_follows_docker() {
        let image: Config = serde_json::from_value(serde_json::json!({
            "Env": ["A=1", "B=2"], "Entrypoint": ["/app.wasm"], "Cmd": ["--default"],
            "WorkingDir": "/srv", "Labels": {"x": "image"}
        }))
        .unwrap();
        let c = merge(
            &req(serde_json::json!({"Env": ["B=3", "C=4"], "Labels": {"y": "me"}})),
            &image,
        );
        assert_eq!(c.env, vec!["A=1", "B=3", "C=4"]);
        assert_eq!(argv(&c, None).unwrap(), vec!["/app.wasm", "--default"]);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.labels.len(), 2);

        let c = merge(&req(serde_json::json!({"Cmd": ["a"]})), &image);
        assert_eq!(argv(&c, None).unwrap(), vec!["/app.wasm", "a"]);
        // --entrypoint drops the image's Cmd.
        let c = merge(
            &req(serde_json::json!({"Entrypoint": ["/other.wasm"]})),
            &image,
        );
        assert_eq!(argv(&c, None).unwrap(), vec!["/other.wasm"]);
        // --entrypoint '' clears it.
        let c = merge(
            &req(serde_json::json!({"Entrypoint": [""], "Cmd": ["x"]})),
            &image,
        );
        assert_eq!(argv(&c, Some("m.wasm")).unwrap(), vec!["m.wasm", "x"]);
    }

    #[test]
    fn no_command_is_an_error() {
        let c = merge(&req(serde_json::json!({})), &Config::default());
        assert!(argv(&c, None).is_err());
        assert_eq!(argv(&c, Some("hello.wasm")).unwrap(), vec!["hello.wasm"]);
    }

    #[test]
    fn refuses_what_wasm_cannot_do() {
        let host = |j| serde_json::from_value::<HostConfig>(j).unwrap();
        let c = Config::default();
        assert!(
            check_supported(
                ExecutorKind::Wasm,
                &c,
                &host(serde_json::json!({"Privileged": true}))
            )
            .is_err()
        );
        assert!(
            check_supported(
                ExecutorKind::Wasm,
                &c,
                &host(serde_json::json!({"NanoCpus": 1000}))
            )
            .is_err()
        );
        assert!(
            check_supported(
                ExecutorKind::Wasm,
                &c,
                &host(serde_json::json!({"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}))
            )
            .is_err()
        );
        assert!(
            check_supported(
                ExecutorKind::Wasm,
                &c,
                &host(serde_json::json!({"AutoRemove": true, "RestartPolicy": {"Name": "always"}}))
            )
            .is_err()
        );
        // What the docker CLI sends by default is fine.
        let defaults = host(serde_json::json!({
            "NetworkMode": "default", "RestartPolicy": {"Name": "no"}, "LogConfig": {"Type": "", "Config": {}},
            "PortBindings": {}, "Binds": null, "Memory": 0
        }));
        assert!(
            check_supported(ExecutorKind::Wasm, &c, &defaults)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn restart_policies() {
        let host = |j| serde_json::from_value::<HostConfig>(j).unwrap();
        assert_eq!(
            Restart::parse(&host(
                serde_json::json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
            ))
            .unwrap(),
            Restart::OnFailure { max_retries: 3 }
        );
        assert!(
            Restart::parse(&host(
                serde_json::json!({"RestartPolicy": {"Name": "sometimes"}})
            ))
            .is_err()
        );
        assert!(
            Restart::parse(&host(
                serde_json::json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}})
            ))
            .is_err()
        );
    }

    #[test]
    fn runtimes() {
        assert_eq!(
            choose_executor(ExecutorKind::Wasm, "").unwrap(),
            ExecutorKind::Wasm
        );
        assert_eq!(
            choose_executor(ExecutorKind::Wasm, "io.containerd.wasmtime.v1").unwrap(),
            ExecutorKind::Wasm
        );
        assert!(choose_executor(ExecutorKind::Native, "wasmtime").is_err());
        assert!(choose_executor(ExecutorKind::Wasm, "nope").is_err());
    }
}
