//! Container shapes: the create body, inspect, list, wait.

use crate::{EmptyObjectMap, StringMap, null_as_default};
use serde::{Deserialize, Deserializer, Serialize};

/// Docker's `StrSlice`: a JSON string or an array of strings (or null).
fn str_slice<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// The container configuration shared by create requests, inspect output and
/// image configs (`ContainerConfig` in Docker's reference).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<EmptyObjectMap>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<EmptyObjectMap>,
    pub working_dir: String,
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(deserialize_with = "null_as_default")]
    pub on_build: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: StringMap,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub shell: Vec<String>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`, `"no"`, `"always"`, `"unless-stopped"` or `"on-failure"`.
    pub name: String,
    pub maximum_retry_count: i64,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub config: StringMap,
}

/// The host-side options of a container. Fields berth acts on are typed; the
/// rest of what a client sends is kept in `extra` and shown back in inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    pub network_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub port_bindings: serde_json::Map<String, serde_json::Value>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub log_config: LogConfig,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    pub runtime: String,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub pids_limit: Option<i64>,
    pub init: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub mounts: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub devices: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_as_default")]
    pub tmpfs: StringMap,
    pub console_size: Option<[u64; 2]>,
    /// Everything else the client sent (`Dns`, `Ulimits`, ...), kept as is.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `POST /containers/create` body: a [`Config`] with `HostConfig` and
/// `NetworkingConfig` beside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: Config,
    pub host_config: HostConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<serde_json::Value>,
    /// `Platform` as the docker CLI sends it in the body for some versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `POST /containers/create` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateResponse {
    pub id: String,
    pub warnings: Vec<String>,
}

/// `State` in container inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Inspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<serde_json::Value>,
    pub config: Config,
    pub network_settings: serde_json::Value,
    /// berth: which executor runs this container, `wasm` or `native`.
    pub executor: String,
    /// berth: how long berthd took to create and start this container, in
    /// this daemon's life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// berth's own measurements of a container's lifecycle, in microseconds of
/// daemon time (client round trips excluded).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Timings {
    /// Handling the create request.
    pub create_micros: u64,
    /// From the start request to the process running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_micros: Option<u64>,
    /// From the start request to the exit being recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_to_exit_micros: Option<u64>,
}

/// `GraphDriver` in inspect output.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriver {
    pub name: String,
    pub data: StringMap,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Summary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<serde_json::Value>,
    pub labels: StringMap,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: serde_json::Value,
    pub mounts: Vec<serde_json::Value>,
    /// berth: `wasm` or `native`.
    pub executor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

/// `POST /containers/{id}/wait` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_accepts_string_or_array() {
        let a: Config = serde_json::from_str(r#"{"Cmd":"echo"}"#).unwrap();
        assert_eq!(a.cmd, Some(vec!["echo".to_string()]));
        let b: Config = serde_json::from_str(r#"{"Cmd":["a","b"],"Env":null}"#).unwrap();
        assert_eq!(b.cmd, Some(vec!["a".into(), "b".into()]));
        assert!(b.env.is_empty());
    }

    #[test]
    fn create_request_keeps_unknown_host_config_fields() {
        let r: CreateRequest =
            serde_json::from_str(r#"{"Image":"x","HostConfig":{"Memory":5,"Dns":["1.1.1.1"]}}"#)
                .unwrap();
        assert_eq!(r.config.image, "x");
        assert_eq!(r.host_config.memory, 5);
        assert_eq!(r.host_config.extra["Dns"], serde_json::json!(["1.1.1.1"]));
        let back = serde_json::to_value(&r.host_config).unwrap();
        assert_eq!(back["Dns"], serde_json::json!(["1.1.1.1"]));
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = serde_json::from_str::<CreateRequest>(r#"{"HostConfig":{"Memory":"lots"}}"#);
        assert!(e.is_err());
    }
}

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    pub console_size: Option<[u64; 2]>,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<[u64; 2]>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub process_config: ProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProcessConfig {
    pub privileged: bool,
    pub user: String,
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
}
