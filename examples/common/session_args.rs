//! The session options `wsclient` and `loadgen` share, parsed once so that
//! "as in wsclient" means exactly that.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use ws_lifecycle::Config;

/// Names of the shared options (each takes a value).
pub const SHARED: [&str; 8] = [
    "--hello",
    "--ack-type",
    "--connect-timeout",
    "--hello-timeout",
    "--ping-interval",
    "--stale-after",
    "--backoff",
    "--jitter",
];

/// What the shared options set.
pub struct SessionArgs {
    /// The hello frame; default `{"type":"hello"}`.
    pub hello: Value,
    /// The ack's `"type"`; default `hello_ack`.
    pub ack_type: String,
    /// The lifecycle configuration.
    pub config: Config,
}

impl SessionArgs {
    /// Defaults, starting from `config`.
    pub fn new(config: Config) -> Self {
        SessionArgs {
            hello: serde_json::json!({"type": "hello"}),
            ack_type: "hello_ack".to_owned(),
            config,
        }
    }

    /// Applies `name value` if `name` is a shared option: `Ok(true)` when
    /// applied, `Ok(false)` when `name` is not one of them.
    pub fn apply(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let config = &mut self.config;
        match name {
            "--hello" => {
                self.hello = serde_json::from_str(value)
                    // Where, never what: a hello may hold credentials.
                    .map_err(|e| format!("--hello: not valid JSON ({e})"))?;
            }
            "--ack-type" => self.ack_type = value.to_owned(),
            "--connect-timeout" => config.connect_timeout = millis(name, value)?,
            "--hello-timeout" => config.ack_timeout = millis(name, value)?,
            "--ping-interval" => config.ping_interval = millis(name, value)?,
            "--stale-after" => config.stale_after = millis(name, value)?,
            "--backoff" => {
                config.backoff = list(name, value, |v| millis(name, v))?;
                if config.backoff.is_empty() {
                    return Err(format!("{name}: give at least one delay"));
                }
            }
            "--jitter" => {
                config.jitter = value.trim().parse::<f64>().map_err(|_| {
                    format!("{name}: expected a fraction such as 0.5, got {value:?}")
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A duration in whole milliseconds.
pub fn millis(name: &str, value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{name}: expected whole milliseconds, got {value:?}"))
}

/// A comma-separated list; an empty value is an empty list.
pub fn list<T>(
    name: &str,
    value: &str,
    mut item: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|v| {
            let v = v.trim();
            if v.is_empty() {
                Err(format!("{name}: empty entry in {value:?}"))
            } else {
                item(v)
            }
        })
        .collect()
}
