//! `splitdns control`: what unbound-control does for Unbound, over a local
//! Unix socket (`[control] socket`).
//!
//! The protocol is one request line (`reload`, `flush [ZONE ...]`, `stats`,
//! `routes`), one response, then the server closes: the response's first line
//! is `ok` or `error`, the rest is the text to show. A reload goes through the
//! [`Supervisor`](crate::serve::reload::Supervisor), as SIGHUP does, and the client
//! gets its outcome; the other commands read the shared state and the cache
//! directly, so none of them waits on a reload or holds up a query for longer
//! than a cache shard's lock.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::config::control::DEFAULT_SOCKET;
use crate::config::{Config, DEFAULT_PATH};
use crate::dns::zone::Zone;
use crate::serve::reload::{ReloadError, ReloadRequest};
use crate::state::Shared;

/// How long the client waits for the whole exchange, a reload included.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for a client's request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request line the server reads.
const MAX_REQUEST: u64 = 4096;

/// What a control client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Reload the config and report the outcome.
    Reload,
    /// Drop the whole cache (no names), or the entries at and under each name.
    Flush(Vec<String>),
    /// The statistics SIGUSR1 logs.
    Stats,
    /// The routing table in force.
    Routes,
}

impl Request {
    /// The request line, without its newline.
    pub fn line(&self) -> String {
        match self {
            Self::Reload => "reload".into(),
            Self::Flush(names) if names.is_empty() => "flush".into(),
            Self::Flush(names) => format!("flush {}", names.join(" ")),
            Self::Stats => "stats".into(),
            Self::Routes => "routes".into(),
        }
    }

    fn parse(line: &str) -> Result<Self, Refusal> {
        let mut words = line.split_whitespace();
        let request = match words.next() {
            Some("reload") => Self::Reload,
            Some("flush") => return Ok(Self::Flush(words.map(String::from).collect())),
            Some("stats") => Self::Stats,
            Some("routes") => Self::Routes,
            _ => return Err(Refusal::Unknown { line: line.into() }),
        };
        match words.next() {
            None => Ok(request),
            Some(extra) => Err(Refusal::ExtraArgument {
                command: request.line(),
                argument: extra.into(),
            }),
        }
    }
}

/// Why splitdns refused a control command: the text after `error` in its
/// response, which `splitdns control` prints.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("unknown control command {line:?}: expected reload, flush [ZONE ...], stats or routes")]
    Unknown { line: String },
    #[error("{command}: unexpected argument {argument:?}")]
    ExtraArgument { command: String, argument: String },
    #[error("flush {name:?}: {problem}")]
    NotAName { name: String, problem: String },
    #[error("splitdns is shutting down")]
    ShuttingDown,
    /// The new config was rejected, in the words `splitdns check` uses.
    #[error(transparent)]
    Reload(#[from] ReloadError),
}

/// Why the control socket could not be set up, or a control command failed;
/// worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "[control] socket = {path:?}: another splitdns answers on it; stop that one, or give this one another [control] socket"
    )]
    InUse { path: PathBuf },
    #[error(
        "[control] socket = {path:?}: the file exists and is not a socket; remove it or pick another path"
    )]
    NotASocket { path: PathBuf },
    #[error("[control] socket = {path:?}: cannot create it: {source}{hint}")]
    Bind {
        path: PathBuf,
        source: io::Error,
        hint: &'static str,
    },
    #[error("[control] socket = {path:?}: cannot give it to [server] user {user:?}: {problem}")]
    Owner {
        path: PathBuf,
        user: String,
        problem: String,
    },
    #[error(
        "cannot reach splitdns at {path}: {source}; is it running with [control] socket = {path:?}? (--socket PATH names another)"
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error("splitdns at {path} did not answer: {source}")]
    Exchange { path: PathBuf, source: io::Error },
    /// splitdns refused the command; the message is its own (for a rejected
    /// reload, the one `splitdns check` prints).
    #[error("{0}")]
    Refused(String),
}

/// The bound control socket; its file is removed when it is dropped.
pub struct Socket {
    listener: UnixListener,
    path: PathBuf,
}

impl Socket {
    /// Creates `[control] socket`, if the config names one: mode 0660, and
    /// owned by `[server] user` when started as root, so the service user can
    /// use and remove it after the switch. A file left by a splitdns that is
    /// gone is replaced; one a running splitdns answers on is an error.
    pub fn bind(config: &Config) -> Result<Option<Self>, ControlError> {
        let Some(path) = &config.control.socket else {
            return Ok(None);
        };
        remove_stale(path)?;
        let listener = UnixListener::bind(path).map_err(|source| bind_error(path, source))?;
        // From here on, dropping the socket removes the file.
        let socket = Self {
            listener,
            path: path.clone(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|source| bind_error(path, source))?;
        if let Some(user) = &config.user {
            give_to(path, user)?;
        }
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|source| bind_error(path, source))?;
        Ok(Some(socket))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A socket file nobody answers on is what a killed splitdns leaves behind.
fn remove_stale(path: &Path) -> Result<(), ControlError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket { path: path.into() });
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ControlError::InUse { path: path.into() });
    }
    tracing::info!(path = %path.display(), "replacing a control socket left by an earlier run");
    std::fs::remove_file(path).map_err(|source| bind_error(path, source))
}

fn bind_error(path: &Path, source: io::Error) -> ControlError {
    let hint = match source.kind() {
        io::ErrorKind::NotFound => {
            "; its directory does not exist: create it (systemd's RuntimeDirectory=splitdns does)"
        }
        io::ErrorKind::PermissionDenied => {
            "; the directory is not writable by the user splitdns runs as"
        }
        _ => "",
    };
    ControlError::Bind {
        path: path.into(),
        source,
        hint,
    }
}

/// chown to `user` and its primary group, when running as root (as
/// [`crate::host::privilege`] then switches to that user).
fn give_to(path: &Path, user: &str) -> Result<(), ControlError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    let owner = |problem: String| ControlError::Owner {
        path: path.into(),
        user: user.into(),
        problem,
    };
    let found = nix::unistd::User::from_name(user).map_err(|e| owner(e.to_string()))?;
    let found = found.ok_or_else(|| owner("no such user on this host".into()))?;
    std::os::unix::fs::chown(path, Some(found.uid.as_raw()), Some(found.gid.as_raw()))
        .map_err(|e| owner(e.to_string()))
}

/// Answers control clients until the task is aborted. Reloads are handed to
/// the supervisor through `reloads`.
pub(crate) async fn serve(
    socket: Socket,
    shared: Arc<Shared>,
    reloads: mpsc::Sender<ReloadRequest>,
    health_window: Duration,
) {
    let listener = match socket
        .listener
        .try_clone()
        .and_then(tokio::net::UnixListener::from_std)
    {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(path = %socket.path.display(), %error, "cannot serve the control socket");
            return;
        }
    };
    tracing::info!(path = %socket.path.display(), "control socket ready");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (shared, reloads) = (Arc::clone(&shared), reloads.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                CLIENT_TIMEOUT,
                answer(stream, &shared, &reloads, health_window),
            )
            .await;
        });
    }
}

async fn answer(
    stream: tokio::net::UnixStream,
    shared: &Shared,
    reloads: &mpsc::Sender<ReloadRequest>,
    health_window: Duration,
) {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(reader.take(MAX_REQUEST));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let outcome = match read {
        Ok(Ok(_)) => match Request::parse(&line) {
            Ok(request) => run(request, shared, reloads, health_window).await,
            Err(refusal) => Err(refusal),
        },
        _ => return,
    };
    let response = match outcome {
        Ok(text) => format!("ok\n{text}"),
        Err(refusal) => format!("error\n{refusal}"),
    };
    let _ = writer.write_all(response.as_bytes()).await;
    let _ = writer.shutdown().await;
}

async fn run(
    request: Request,
    shared: &Shared,
    reloads: &mpsc::Sender<ReloadRequest>,
    health_window: Duration,
) -> Result<String, Refusal> {
    match request {
        Request::Reload => {
            let (tx, rx) = oneshot::channel();
            reloads.send(tx).await.map_err(|_| Refusal::ShuttingDown)?;
            let reloaded = rx.await.map_err(|_| Refusal::ShuttingDown)??;
            Ok(format!("{reloaded}\n"))
        }
        Request::Flush(names) => flush(shared, &names),
        Request::Stats => Ok(shared.stats(health_window).to_string()),
        Request::Routes => {
            let mut routes = shared.state().router.to_string();
            if let Some(mirror) = shared.mirror() {
                routes.push_str(&format!("{}\n", mirror.status(std::time::Instant::now())));
            }
            Ok(routes)
        }
    }
}

/// Drops the whole cache, or the entries at and under each of `names`.
fn flush(shared: &Shared, names: &[String]) -> Result<String, Refusal> {
    let zones = names
        .iter()
        .map(|name| {
            Zone::parse(name).map_err(|problem| Refusal::NotAName {
                name: name.clone(),
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dropped = shared
        .cache()
        .retain(|name| !zones.is_empty() && !zones.iter().any(|zone| zone.contains(name)));
    tracing::info!(dropped, names = %names.join(" "), "cache flushed");
    let what = if zones.is_empty() {
        "the whole cache".to_string()
    } else {
        let zones: Vec<String> = zones.iter().map(ToString::to_string).collect();
        format!("entries at and under {}", zones.join(", "))
    };
    Ok(format!("flushed {dropped} entries: {what}\n"))
}

/// `--socket`, else `[control] socket` of the config (`--config`, else
/// [`DEFAULT_PATH`] when it exists), else [`DEFAULT_SOCKET`]. Only that one
/// key is read, so a config that `check` would refuse still names its
/// socket: `splitdns control reload` then reports what is wrong with it.
pub fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> PathBuf {
    if let Some(socket) = socket {
        return socket.into();
    }
    let config = config.unwrap_or(Path::new(DEFAULT_PATH));
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| {
            let socket = table.get("control")?.get("socket")?.as_str()?;
            Some(PathBuf::from(socket))
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Sends `request` to the splitdns at `path` and returns its answer.
pub fn request(path: &Path, request: &Request) -> Result<String, ControlError> {
    let mut stream = UnixStream::connect(path).map_err(|source| ControlError::Connect {
        path: path.into(),
        source,
    })?;
    let exchange = |source| ControlError::Exchange {
        path: path.into(),
        source,
    };
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .map_err(exchange)?;
    stream
        .set_write_timeout(Some(CLIENT_TIMEOUT))
        .map_err(exchange)?;
    stream
        .write_all(format!("{}\n", request.line()).as_bytes())
        .map_err(exchange)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(exchange)?;
    match response.split_once('\n') {
        Some(("ok", text)) => Ok(text.to_string()),
        Some(("error", text)) => Err(ControlError::Refused(text.trim_end().to_string())),
        _ => Err(exchange(io::Error::new(
            io::ErrorKind::InvalidData,
            "the connection closed without a response",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn requests_read_back_from_their_lines() {
        for request in [
            Request::Reload,
            Request::Flush(Vec::new()),
            Request::Flush(vec!["consul".into(), "web.example".into()]),
            Request::Stats,
            Request::Routes,
        ] {
            assert_eq!(
                Request::parse(&format!("{}\n", request.line())).unwrap(),
                request
            );
        }
    }

    #[test]
    fn unknown_commands_and_extra_arguments_are_refused_in_words() {
        let err = Request::parse("restart\n").unwrap_err().to_string();
        assert!(
            err.contains("expected reload, flush [ZONE ...], stats or routes"),
            "{err}"
        );
        let err = Request::parse("stats now\n").unwrap_err().to_string();
        assert_eq!(err, "stats: unexpected argument \"now\"");
    }
}
