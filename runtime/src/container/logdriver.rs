//! Log drivers at create: Docker's checks of `HostConfig.LogConfig`
//! (`logger.ValidateLogOpts`), then what berth supports. A driver Docker
//! does not know is a bad request (400), as dockerd answers; one Docker
//! has but berth does not is "not implemented" (501). Containers log to
//! `log.json` in Docker's json-file format (see [`super::logs`]).

use crate::error::{Error, Result};
use berth_api_types::container::LogConfig;

/// Log drivers Docker has built in: berth implements json-file; the
/// others are known, so they are "not implemented" (501), where a name
/// Docker does not know either is a bad request (400), as dockerd answers.
const DOCKER_LOG_DRIVERS: &[&str] = &[
    "json-file",
    "local",
    "none",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// Docker's log-config checks at create (`logger.ValidateLogOpts`), then
/// what berth supports: json-file, without options.
pub fn check(log: &LogConfig) -> Result<()> {
    let driver = if log.kind.is_empty() {
        "json-file"
    } else {
        log.kind.as_str()
    };
    if !DOCKER_LOG_DRIVERS.contains(&driver) {
        return Err(Error::invalid(format!(
            "logger: no log driver named '{driver}' is registered: berth logs with json-file"
        )));
    }
    if driver != "none" {
        match log.config.get("mode").map(String::as_str) {
            None | Some("") | Some("blocking") | Some("non-blocking") => {}
            Some(_) => {
                return Err(Error::invalid(
                    "logger: logger option 'mode' can only be one of: blocking, non-blocking",
                ));
            }
        }
    }
    const JSON_FILE_OPTS: &[&str] = &[
        "max-file",
        "max-size",
        "compress",
        "labels",
        "labels-regex",
        "env",
        "env-regex",
        "tag",
        "mode",
        "max-buffer-size",
    ];
    if driver == "json-file"
        && let Some(k) = log
            .config
            .keys()
            .find(|k| !JSON_FILE_OPTS.contains(&k.as_str()))
    {
        return Err(Error::invalid(format!(
            "unknown log opt '{k}' for json-file log driver"
        )));
    }
    if driver != "json-file" {
        return Err(Error::not_implemented(format!(
            "log driver {driver} is not supported: berth logs in Docker's json-file format"
        )));
    }
    if !log.config.is_empty() {
        return Err(Error::not_implemented(
            "log options (--log-opt) are not supported by berth yet: logs are kept whole, without rotation",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_drivers_unknown_to_docker_are_bad_requests() {
        use crate::error::ErrorKind;
        let kind = |j| {
            let log = serde_json::from_value(j).unwrap();
            check(&log).err().map(|e| e.kind())
        };
        assert_eq!(kind(serde_json::json!({"Type": ""})), None);
        assert_eq!(kind(serde_json::json!({"Type": "json-file"})), None);
        let e = check(&serde_json::from_value(serde_json::json!({"Type": "nosuch"})).unwrap())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.to_string()
                .contains("no log driver named 'nosuch' is registered"),
            "{e}"
        );
        assert_eq!(
            kind(serde_json::json!({"Type": "syslog"})),
            Some(ErrorKind::NotImplemented)
        );
        let opts = |o| serde_json::json!({"Type": "json-file", "Config": o});
        assert_eq!(
            kind(opts(serde_json::json!({"bogus": "1"}))),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(
            kind(opts(serde_json::json!({"mode": "x"}))),
            Some(ErrorKind::InvalidArgument)
        );
        assert_eq!(
            kind(opts(serde_json::json!({"max-size": "1m"}))),
            Some(ErrorKind::NotImplemented)
        );
    }
}
