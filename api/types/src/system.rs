//! System shapes: `/version` and `/info`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Version {
    pub platform: PlatformName,
    pub components: Vec<Component>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub experimental: bool,
    pub build_time: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlatformName {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub details: crate::StringMap,
}

/// `GET /info`. Only what berth can state truthfully is filled in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub docker_root_dir: String,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    pub pids_limit: bool,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    pub name: String,
    pub server_version: String,
    pub runtimes: serde_json::Map<String, serde_json::Value>,
    pub default_runtime: String,
    pub swarm: Swarm,
    pub security_options: Vec<String>,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub logging_driver: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub warnings: Vec<String>,
    /// berthd logs at debug level (`BERTH_LOG`), as `dockerd --debug`.
    pub debug: bool,
    /// Descriptors berthd holds; its live async tasks (Go's goroutines).
    #[serde(rename = "NFd")]
    pub n_fd: i64,
    #[serde(rename = "NGoroutines")]
    pub n_goroutines: i64,
    pub system_time: String,
    pub live_restore_enabled: bool,
    pub index_server_address: String,
    /// `Volume`, `Network`, `Authorization` and `Log` drivers.
    pub plugins: Plugins,
    /// Docker's registry settings: `InsecureRegistryCIDRs`, `IndexConfigs`.
    pub registry_config: Option<serde_json::Value>,
    /// berth: the Wasm engine and its limits.
    pub wasm: WasmInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Plugins {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Swarm {
    pub local_node_state: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct WasmInfo {
    pub engine: String,
    pub version: String,
    /// `wasip1`, `wasip2`.
    pub targets: Vec<String>,
    /// How many Wasm containers the instance pool can hold at once.
    pub pool_slots: u64,
    pub running: i64,
    pub compiled_cache_dir: String,
}
