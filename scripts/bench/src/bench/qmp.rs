//! A small client of QEMU's machine protocol (QMP) over a Unix socket, for the
//! snapshot rows: start a migration to a file and follow it to its end.
//!
//! QEMU listens with `-qmp unix:PATH,server=on,wait=off` (aerie-host's `Qemu::qmp`), greets each client with a
//! `{"QMP": ...}` line, and accepts commands once `qmp_capabilities` has been sent.
//! Each command gets one `{"return": ...}` or `{"error": ...}` reply; events
//! (`{"event": ...}`) may come in between and are skipped (QEMU's "QMP
//! Specification", docs/interop/qmp-spec).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use xtask::error::{Context, Error, Result};

/// How long a reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a connection is tried again while QEMU has not made its socket yet.
const CONNECT_RETRY: Duration = Duration::from_millis(10);

/// A QMP connection, ready for commands.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the socket at `path`, waiting up to `timeout` for QEMU to create
    /// it, reads the greeting and enters command mode.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(error) if start.elapsed() >= timeout => {
                    return Err(Error::new(format!(
                        "cannot connect to QEMU's QMP socket {}: {error}",
                        path.display()
                    )));
                }
                Err(_) => std::thread::sleep(CONNECT_RETRY),
            }
        };
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .context(|| "cannot set a timeout on QEMU's QMP socket")?;
        let writer = stream
            .try_clone()
            .context(|| "cannot use QEMU's QMP socket")?;
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::new(format!(
                "QEMU's QMP socket {} did not greet with a `QMP` object",
                path.display()
            )));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments` and returns the value of its `return`; an
    /// `error` reply is an error with QEMU's description.
    pub fn execute(&mut self, command: &str, arguments: Option<Json>) -> Result<Json> {
        let mut request = Map::new();
        request.insert("execute".to_string(), Json::from(command));
        if let Some(arguments) = arguments {
            request.insert("arguments".to_string(), arguments);
        }
        let line = format!("{}\n", Json::Object(request));
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.flush())
            .context(|| format!("cannot send `{command}` to QEMU over QMP"))?;
        loop {
            let message = self.read_message()?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let description = error
                    .get("desc")
                    .and_then(Json::as_str)
                    .unwrap_or("no description");
                return Err(Error::new(format!(
                    "QEMU refused `{command}`: {description}"
                )));
            }
            // An event: not the reply.
        }
    }

    /// Reads one line and parses it as a JSON object.
    fn read_message(&mut self) -> Result<Json> {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .context(|| "cannot read from QEMU's QMP socket")?;
        if read == 0 {
            return Err(Error::new("QEMU closed its QMP socket"));
        }
        serde_json::from_str(&line).map_err(|error| {
            Error::new(format!(
                "QEMU's QMP reply is not JSON ({error}): {}",
                line.trim_end()
            ))
        })
    }
}

/// Where a migration is, from `query-migrate`'s reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// `status`: `setup`, `active`, `completed`, `failed`, ...
    pub status: String,
    /// `total-time`: milliseconds from the start to the end (once completed).
    pub total_ms: Option<f64>,
    /// `downtime`: milliseconds the guest was stopped.
    pub downtime_ms: Option<f64>,
    /// `ram.transferred`: bytes of RAM sent.
    pub ram_bytes: Option<f64>,
    /// `ram.normal-bytes`: bytes of pages sent in full (zero pages are sent as a
    /// flag only).
    pub normal_bytes: Option<f64>,
    /// `error-desc`: why it failed.
    pub error: Option<String>,
}

impl Migration {
    /// Reads the value of `query-migrate`'s `return`; `None` without a status.
    pub fn from_reply(value: &Json) -> Option<Self> {
        let number = |value: &Json, name: &str| value.get(name).and_then(Json::as_f64);
        let ram = value.get("ram");
        Some(Self {
            status: value.get("status")?.as_str()?.to_string(),
            total_ms: number(value, "total-time"),
            downtime_ms: number(value, "downtime"),
            ram_bytes: ram.and_then(|ram| number(ram, "transferred")),
            normal_bytes: ram.and_then(|ram| number(ram, "normal-bytes")),
            error: value
                .get("error-desc")
                .and_then(Json::as_str)
                .map(str::to_string),
        })
    }

    /// Whether the migration is over, one way or the other.
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }

    /// Whether it completed.
    pub fn completed(&self) -> bool {
        self.status == "completed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::net::UnixListener;

    #[test]
    fn migration_status_is_read() {
        let reply: Json = serde_json::from_str(
            "{\"status\": \"completed\", \"setup-time\": 1, \"downtime\": 2, \"total-time\": \
             422, \"ram\": {\"total\": 403054592, \"transferred\": 57970829, \"normal-bytes\": \
             57020416}}",
        )
        .unwrap();
        let migration = Migration::from_reply(&reply).unwrap();
        assert_eq!(
            migration,
            Migration {
                status: "completed".into(),
                total_ms: Some(422.0),
                downtime_ms: Some(2.0),
                ram_bytes: Some(57_970_829.0),
                normal_bytes: Some(57_020_416.0),
                error: None,
            }
        );
        assert!(migration.finished() && migration.completed());
        let active = Migration::from_reply(&json!({"status": "active"}));
        assert!(!active.unwrap().finished());
        let failed =
            Migration::from_reply(&json!({"status": "failed", "error-desc": "disk full"})).unwrap();
        assert!(failed.finished() && !failed.completed());
        assert_eq!(failed.error.as_deref(), Some("disk full"));
        assert_eq!(Migration::from_reply(&json!({})), None);
    }

    /// A QMP server in a thread: greets, then answers each request line with the
    /// next scripted reply lines.
    fn fake_qemu(path: &Path, replies: Vec<&'static str>) -> std::thread::JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            writer
                .write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n")
                .unwrap();
            let mut requests = Vec::new();
            for reply in replies {
                // A request is one line of JSON.
                let mut request = String::new();
                if reader.read_line(&mut request).unwrap() == 0 {
                    return requests;
                }
                requests.push(request);
                writer.write_all(reply.as_bytes()).unwrap();
            }
            requests
        })
    }

    #[test]
    fn commands_get_their_reply_past_events_and_errors() {
        let path = std::env::temp_dir().join(format!("aerie-qmp-test-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = fake_qemu(
            &path,
            vec![
                "{\"return\": {}}\r\n",
                "{\"event\": \"STOP\"}\r\n{\"return\": {\"status\": \"active\"}}\r\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no such file\"}}\r\n",
            ],
        );
        let mut qmp = Qmp::connect(&path, Duration::from_secs(10)).unwrap();
        let status = qmp
            .execute("migrate", Some(json!({"uri": "exec:cat > f"})))
            .unwrap();
        assert_eq!(status.get("status").and_then(Json::as_str), Some("active"));
        let error = qmp.execute("query-migrate", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "QEMU refused `query-migrate`: no such file"
        );
        let requests = server.join().unwrap();
        let request = |n: usize| serde_json::from_str::<Json>(&requests[n]).unwrap();
        assert_eq!(request(0), json!({"execute": "qmp_capabilities"}));
        assert_eq!(
            request(1),
            json!({"execute": "migrate", "arguments": {"uri": "exec:cat > f"}})
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_socket_is_an_error_after_the_timeout() {
        let error = Qmp::connect(
            Path::new("/nonexistent/aerie-qmp.sock"),
            Duration::from_millis(50),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot connect to QEMU's QMP socket /nonexistent/aerie-qmp.sock")
        );
    }
}
