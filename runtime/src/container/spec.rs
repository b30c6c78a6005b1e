//! From Docker's create request to what runs: merge the request with the
//! image's defaults as Docker does, refuse options the chosen executor cannot
//! honour (saying so, never ignoring them silently), and produce the OCI
//! runtime spec the executor consumes. Docker-isms stop here.

use crate::error::{Error, Result, ResultExt};
use crate::image::ExecutorKind;
use berth_api_types::container::{Config, CreateRequest, HostConfig};
use oci_spec::runtime::{
    LinuxBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder, LinuxSeccomp, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder,
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
pub fn choose_executor<V>(
    image: ExecutorKind,
    runtime: &str,
    native_runtimes: &std::collections::HashMap<String, V>,
) -> Result<ExecutorKind> {
    match runtime {
        "" | "berth" => Ok(image),
        r if native_runtimes.contains_key(r) => {
            if image == ExecutorKind::Native {
                Ok(ExecutorKind::Native)
            } else {
                Err(Error::invalid(format!(
                    "runtime {r} runs Linux containers, but this is a Wasm image"
                )))
            }
        }
        r if WASM_RUNTIMES.contains(&r) => {
            if image == ExecutorKind::Wasm {
                Ok(ExecutorKind::Wasm)
            } else {
                Err(Error::invalid(format!(
                    "runtime {r} runs Wasm images, but this image holds a Linux root filesystem"
                )))
            }
        }
        other => {
            let mut known: Vec<&str> = native_runtimes.keys().map(String::as_str).collect();
            known.sort_unstable();
            Err(Error::invalid(format!(
                "unknown runtime specified {other}: berth knows berth (the default){}; for Wasm images also {}. Register others with berthd --add-runtime NAME=PATH",
                known.iter().map(|k| format!(", {k}")).collect::<String>(),
                WASM_RUNTIMES.join(", ")
            )))
        }
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
    super::logdriver::check(&host.log_config)?;
    if !host.binds.is_empty() || !host.mounts.is_empty() || !host.tmpfs.is_empty() {
        return Err(Error::not_implemented(
            "volumes and bind mounts (-v, --mount, --tmpfs) are not supported yet",
        ));
    }
    refuse_unsupported_host_fields(host)?;
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
    if kind == ExecutorKind::Native {
        // A uid or gid past 2^31 - 1 could run as root ((uid_t)-1 leaves
        // an id unchanged): numbers are refused here, names where they
        // resolve (at start, in the container's own files).
        crate::executor::native::init::check_user_ids(&config.user).map_err(Error::invalid)?;
        if host.memory > 0 && host.memory < 6 * 1024 * 1024 {
            return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
        }
        if host.memory_swap > 0 && host.memory > 0 && host.memory_swap < host.memory {
            return Err(Error::invalid(
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        if host.nano_cpus != 0 && (host.cpu_quota != 0 || host.cpu_period != 0) {
            return Err(Error::invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i64;
        if host.nano_cpus < 0 || host.nano_cpus > ncpu * 1_000_000_000 {
            return Err(Error::invalid(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        if host.cpu_shares < 0 {
            return Err(Error::invalid("invalid CPU shares: they can't be negative"));
        }
        if !host.devices.is_empty() {
            return Err(Error::not_implemented(
                "--device is not supported by berth yet: the container gets Docker's default devices only",
            ));
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

/// `HostConfig` fields berth does not act on, with the `docker run` flag
/// that sets each. A request that gives one a value is refused rather than
/// run without it; clients send most of them with zero values, which mean
/// "not set".
const UNSUPPORTED_HOST_FIELDS: &[(&str, &str)] = &[
    ("BlkioWeight", "--blkio-weight"),
    ("BlkioWeightDevice", "--blkio-weight-device"),
    ("BlkioDeviceReadBps", "--device-read-bps"),
    ("BlkioDeviceWriteBps", "--device-write-bps"),
    ("BlkioDeviceReadIOps", "--device-read-iops"),
    ("BlkioDeviceWriteIOps", "--device-write-iops"),
    ("CgroupParent", "--cgroup-parent"),
    ("CgroupnsMode", "--cgroupns"),
    ("Cgroup", "--cgroup"),
    ("ContainerIDFile", ""),
    ("CpuCount", ""),
    ("CpuPercent", ""),
    ("CpuRealtimePeriod", "--cpu-rt-period"),
    ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
    ("CpusetCpus", "--cpuset-cpus"),
    ("CpusetMems", "--cpuset-mems"),
    ("DeviceCgroupRules", "--device-cgroup-rule"),
    ("DeviceRequests", "--gpus"),
    ("Dns", "--dns"),
    ("DnsOptions", "--dns-option"),
    ("DnsSearch", "--dns-search"),
    ("ExtraHosts", "--add-host"),
    ("GroupAdd", "--group-add"),
    ("IOMaximumBandwidth", ""),
    ("IOMaximumIOps", ""),
    ("IpcMode", "--ipc"),
    ("KernelMemory", "--kernel-memory"),
    ("KernelMemoryTCP", ""),
    ("Links", "--link"),
    ("MaskedPaths", ""),
    ("MemoryReservation", "--memory-reservation"),
    ("MemorySwappiness", "--memory-swappiness"),
    ("OomKillDisable", "--oom-kill-disable"),
    ("OomScoreAdj", "--oom-score-adj"),
    ("PidMode", "--pid"),
    ("ReadonlyPaths", ""),
    ("ShmSize", "--shm-size"),
    ("StorageOpt", "--storage-opt"),
    ("Sysctls", "--sysctl"),
    ("UTSMode", "--uts"),
    ("Ulimits", "--ulimit"),
    ("UsernsMode", "--userns"),
    ("VolumeDriver", "--volume-driver"),
    ("VolumesFrom", "--volumes-from"),
];

/// Refuses a request that sets a `HostConfig` field berth would otherwise
/// drop (see [`UNSUPPORTED_HOST_FIELDS`]).
fn refuse_unsupported_host_fields(host: &HostConfig) -> Result<()> {
    for (field, flag) in UNSUPPORTED_HOST_FIELDS {
        let Some(value) = host.extra.get(*field) else {
            continue;
        };
        // Values that say "the default" in Docker's API.
        let default = match (*field, value) {
            ("CgroupnsMode", serde_json::Value::String(m)) => m == "private",
            ("OomKillDisable", serde_json::Value::Bool(b)) => !b,
            ("MemorySwappiness", serde_json::Value::Number(n)) => n.as_i64() == Some(-1),
            _ => false,
        };
        if default || is_zero(value) {
            continue;
        }
        let flag = if flag.is_empty() {
            String::new()
        } else {
            format!(" ({flag})")
        };
        return Err(Error::not_implemented(format!(
            "HostConfig.{field}{flag} is not supported by berth yet: create the container without it"
        )));
    }
    Ok(())
}

/// Whether a JSON value is the zero value a Go client sends for a field it
/// leaves unset.
fn is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
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

    /// A native container's spec for `host`, with Docker's default
    /// capabilities plus `cap_add`, resolved as the container layer does.
    fn native(host: serde_json::Value) -> Spec {
        use crate::executor::native::caps;
        let host: HostConfig = serde_json::from_value(host).unwrap();
        let caps: Vec<String> = caps::resolve(&host.cap_add, &host.cap_drop, host.privileged)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        native_spec(&NativeSpecInput {
            id: "0123456789abcdef",
            argv: &["sh".to_string()],
            config: &Config::default(),
            host: &host,
            rootfs: std::path::Path::new("/tmp/rootfs"),
            capabilities: &caps,
            cgroups_path: "/berth/0123456789abcdef",
        })
        .unwrap()
    }

    #[test]
    fn native_spec_carries_the_seccomp_section_for_its_capabilities() {
        use crate::executor::native::caps::{Capability, docker_default};
        use crate::executor::native::seccomp;
        let section = |spec: &Spec| spec.linux().as_ref().unwrap().seccomp().clone();
        // Docker's default profile, for the final capability list.
        let want = seccomp::to_oci(seccomp::default_profile(), &docker_default()).unwrap();
        assert_eq!(section(&native(serde_json::json!({}))), Some(want));
        let mut admin = docker_default();
        admin.push(Capability::CAP_SYS_ADMIN);
        let want = seccomp::to_oci(seccomp::default_profile(), &admin).unwrap();
        let spec = native(serde_json::json!({"CapAdd": ["SYS_ADMIN"]}));
        assert_eq!(section(&spec), Some(want));
        assert!(
            section(&spec)
                .unwrap()
                .syscalls()
                .iter()
                .flatten()
                .any(|r| r.names().iter().any(|n| n == "mount"))
        );
        // A profile of the user's.
        let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#;
        let spec = native(serde_json::json!({"SecurityOpt": [format!("seccomp={profile}")]}));
        let want = seccomp::to_oci(&seccomp::parse(profile.as_bytes()).unwrap(), &[]).unwrap();
        assert_eq!(section(&spec), Some(want));
        // None when unconfined or privileged.
        let spec = native(serde_json::json!({"SecurityOpt": ["seccomp=unconfined"]}));
        assert_eq!(section(&spec), None);
        let spec = native(serde_json::json!({"Privileged": true}));
        assert_eq!(section(&spec), None);
        // no-new-privileges stays where it was.
        let nnp = |spec: &Spec| spec.process().as_ref().unwrap().no_new_privileges();
        assert_eq!(nnp(&native(serde_json::json!({}))), Some(true));
        let spec = native(serde_json::json!({"SecurityOpt": ["no-new-privileges=false"]}));
        assert_eq!(nnp(&spec), Some(false));
        assert!(section(&spec).is_some());
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
    fn host_fields_berth_would_drop_are_refused() {
        let host = |j| serde_json::from_value::<HostConfig>(j).unwrap();
        let c = Config::default();
        for kind in [ExecutorKind::Native, ExecutorKind::Wasm] {
            let e = check_supported(
                kind,
                &c,
                &host(
                    serde_json::json!({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 100}]}),
                ),
            )
            .unwrap_err();
            assert!(
                e.to_string().contains("HostConfig.Ulimits (--ulimit)"),
                "{e}"
            );
            assert!(
                check_supported(kind, &c, &host(serde_json::json!({"ShmSize": 1048576}))).is_err()
            );
            assert!(
                check_supported(kind, &c, &host(serde_json::json!({"Dns": ["1.1.1.1"]}))).is_err()
            );
            let log_opt = host(
                serde_json::json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}}}),
            );
            assert!(check_supported(kind, &c, &log_opt).is_err());
        }
        // The zero values the docker CLI sends for every field it knows,
        // and Docker's own defaults, pass.
        let zeros = host(serde_json::json!({
            "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null, "GroupAdd": null,
            "IpcMode": "", "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "",
            "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "CgroupnsMode": "private",
            "Ulimits": null, "CpusetCpus": "", "MemorySwappiness": null, "OomKillDisable": false,
            "BlkioWeightDevice": [], "DeviceCgroupRules": null, "MaskedPaths": null,
            "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": null, "CpuCount": 0
        }));
        assert!(check_supported(ExecutorKind::Native, &c, &zeros).is_ok());
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
        let native: std::collections::HashMap<String, ()> = [("crun".to_string(), ())].into();
        let none = std::collections::HashMap::<String, ()>::new();
        assert_eq!(
            choose_executor(ExecutorKind::Wasm, "", &none).unwrap(),
            ExecutorKind::Wasm
        );
        assert_eq!(
            choose_executor(ExecutorKind::Wasm, "io.containerd.wasmtime.v1", &none).unwrap(),
            ExecutorKind::Wasm
        );
        assert!(choose_executor(ExecutorKind::Native, "wasmtime", &none).is_err());
        assert!(choose_executor(ExecutorKind::Wasm, "nope", &none).is_err());
        assert_eq!(
            choose_executor(ExecutorKind::Native, "crun", &native).unwrap(),
            ExecutorKind::Native
        );
        assert!(choose_executor(ExecutorKind::Wasm, "crun", &native).is_err());
        let e = choose_executor(ExecutorKind::Native, "kata", &native).unwrap_err();
        assert!(
            e.to_string().contains("crun") && e.to_string().contains("--add-runtime"),
            "{e}"
        );
    }
}

/// Docker's default `PATH` for containers whose image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths Docker masks in every unprivileged container.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only in every unprivileged container.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default pids limit is none; berth limits every native container
/// unless told otherwise (`--pids-limit -1` lifts it).
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// The environment of a native container: the image's and the request's,
/// with Docker's additions (`PATH` when unset, `HOSTNAME`, `TERM` with a
/// TTY).
pub fn native_env(config: &Config, hostname: &str) -> Vec<String> {
    let mut env = config.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !has(&env, "HOSTNAME") {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if config.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// The options `--security-opt` takes that berth acts on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityOpts {
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `seccomp=FILE`: the profile's JSON (the docker CLI sends the file's
    /// contents, not its name).
    pub seccomp_profile: Option<String>,
    /// `no-new-privileges[=true|false]`; berth's default is true.
    pub no_new_privileges: bool,
}

impl SecurityOpts {
    pub fn parse(opts: &[String]) -> Result<SecurityOpts> {
        let mut s = SecurityOpts {
            no_new_privileges: true,
            ..Default::default()
        };
        for o in opts {
            let (k, v) = o
                .split_once(['=', ':'])
                .map(|(k, v)| (k, Some(v)))
                .unwrap_or((o.as_str(), None));
            match (k, v) {
                ("seccomp", Some("unconfined")) => s.seccomp_unconfined = true,
                ("seccomp", Some(profile)) => s.seccomp_profile = Some(profile.to_string()),
                ("no-new-privileges", None | Some("true")) => s.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
                ("apparmor" | "label", _) => {
                    return Err(Error::not_implemented(format!(
                        "security option {o:?} is not supported: berth confines containers with seccomp, capabilities and namespaces, not AppArmor or SELinux"
                    )));
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "invalid --security-opt {o:?}: berth takes seccomp=unconfined, seccomp=<profile JSON> and no-new-privileges[=true|false]"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// What a native container's spec is made from, besides its config.
pub struct NativeSpecInput<'a> {
    pub id: &'a str,
    pub argv: &'a [String],
    pub config: &'a Config,
    pub host: &'a HostConfig,
    pub rootfs: &'a std::path::Path,
    /// Capability names (`CAP_CHOWN`), already resolved from the defaults,
    /// `--cap-add`, `--cap-drop` and `--privileged`.
    pub capabilities: &'a [String],
    pub cgroups_path: &'a str,
}

/// The default hostname: the first 12 characters of the ID, as Docker.
pub fn hostname(config: &Config, id: &str) -> String {
    if config.hostname.is_empty() {
        id[..12].to_string()
    } else {
        config.hostname.clone()
    }
}

/// The OCI runtime spec of a native container with Docker's defaults:
/// namespaces, mounts, masked and read-only paths, devices, capabilities,
/// resources. The process user is left as `uid 0` here; the runtime
/// resolves `config.user` inside the container's root (see the native
/// executor). Seccomp is resolved here, once, into `linux.seccomp` (see
/// [`seccomp_section`]): every runtime, berth's own included, installs what
/// the spec says.
pub fn native_spec(input: &NativeSpecInput) -> Result<Spec> {
    let c = input.config;
    let h = input.host;
    let hostname = hostname(c, input.id);
    let cwd = if c.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.working_dir.clone()
    };
    if !cwd.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory '{cwd}' is invalid: it needs to be an absolute path"
        )));
    }
    let caps = input.capabilities;
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        serde_json::json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        serde_json::json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    if h.privileged {
        // Docker mounts /sys read-write for privileged containers.
        mounts[3]["options"] = serde_json::json!(["nosuid", "noexec", "nodev", "rw"]);
    }
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), h.memory.into());
        match h.memory_swap {
            0 => {}
            -1 => {
                memory.insert("swap".into(), (-1).into());
            }
            s => {
                memory.insert("swap".into(), s.into());
            }
        }
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus > 0 {
        cpu.insert("period".into(), 100_000u64.into());
        cpu.insert(
            "quota".into(),
            (h.nano_cpus * 100_000 / 1_000_000_000).into(),
        );
    } else if h.cpu_quota > 0 {
        cpu.insert("quota".into(), h.cpu_quota.into());
        if h.cpu_period > 0 {
            cpu.insert("period".into(), h.cpu_period.into());
        }
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), h.cpu_shares.into());
    }
    let pids = match h.pids_limit {
        None | Some(0) => DEFAULT_PIDS_LIMIT,
        Some(n) if n < 0 => -1,
        Some(n) => n,
    };
    let devices_allowed = serde_json::json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
    ]);
    let devices_allowed = if h.privileged {
        serde_json::json!([{"allow": true, "access": "rwm"}])
    } else {
        devices_allowed
    };
    let mut resources = serde_json::json!({
        "devices": devices_allowed,
        "pids": {"limit": pids},
    });
    if !memory.is_empty() {
        resources["memory"] = memory.into();
    }
    if !cpu.is_empty() {
        resources["cpu"] = cpu.into();
    }
    let (masked, readonly): (Vec<&str>, Vec<&str>) = if h.privileged {
        (vec![], vec![])
    } else {
        (MASKED_PATHS.to_vec(), READONLY_PATHS.to_vec())
    };
    let security = SecurityOpts::parse(&h.security_opt)?;
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": c.tty,
            "user": {"uid": 0, "gid": 0},
            "args": input.argv,
            "env": native_env(c, &hostname),
            "cwd": cwd,
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
            },
            "noNewPrivileges": security.no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": input.rootfs, "readonly": h.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "annotations": {"org.berth.user": c.user},
        "linux": {
            "resources": resources,
            "cgroupsPath": input.cgroups_path,
            "namespaces": [
                {"type": "mount"}, {"type": "network"}, {"type": "uts"},
                {"type": "pid"}, {"type": "ipc"}, {"type": "cgroup"},
            ],
            "maskedPaths": masked,
            "readonlyPaths": readonly,
        },
    });
    let mut spec: Spec = serde_json::from_value(spec)
        .map_err(|e| Error::internal(format!("building the runtime spec: {e}")))?;
    let section = seccomp_section(h, &security, caps)?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(section);
    }
    Ok(spec)
}

/// The spec's `linux.seccomp` for a native container, as moby's
/// `setupSeccomp` writes it: none when privileged or `seccomp=unconfined`;
/// else the user's profile (`seccomp=<profile JSON>`) or Docker's default,
/// evaluated for the container's final capability list `caps` (the default
/// profile opens syscalls by capability) on this host.
pub fn seccomp_section(
    host: &HostConfig,
    security: &SecurityOpts,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    use crate::executor::native::{caps::Capability, seccomp};
    if host.privileged || security.seccomp_unconfined {
        return Ok(None);
    }
    let caps = caps
        .iter()
        .map(|c| {
            c.parse()
                .map_err(|_| Error::invalid(format!("unknown capability: {c:?}")))
        })
        .collect::<Result<Vec<Capability>>>()?;
    let section = match &security.seccomp_profile {
        Some(json) => seccomp::to_oci(&seccomp::parse(json.as_bytes())?, &caps)?,
        None => seccomp::to_oci(seccomp::default_profile(), &caps)?,
    };
    Ok(Some(section))
}
