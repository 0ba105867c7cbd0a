//! An exclusive lock per store, so that two cpstat processes never write to
//! the same store at once.
//!
//! The lock is an advisory file lock (`flock` on Unix) on `<store>/.cpstat.lock`.
//! The kernel releases it when the holder exits, however it exits, so a
//! killed run never blocks the next one. The holder writes its process id,
//! start time and command into the file: a waiting process shows them, and a
//! process that takes the lock and finds them still there knows that its
//! predecessor ended without releasing it, and logs the takeover.
//!
//! NOTE: advisory locks on network file systems (NFS, SMB) depend on the
//! server; keep a store on a local disk when several hosts share it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use crate::error::{Classify, ExitKind};

/// Name of the lock file in the store root; hidden and not `*.parquet`.
pub const LOCK_FILE: &str = ".cpstat.lock";

/// Time between two attempts while waiting for the lock.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A failure to take the store lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the store {store} is busy: {holder} holds its lock, and it was still held after waiting \
         {waited}s. Run again later, or raise --lock-timeout"
    )]
    Busy {
        store: PathBuf,
        holder: String,
        waited: u64,
    },
    #[error("failed to lock the store with {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Classify for LockError {
    fn exit_kind(&self) -> ExitKind {
        match self {
            LockError::Busy { .. } => ExitKind::Busy,
            LockError::Io { .. } => ExitKind::Usage,
        }
    }
}

/// The process recorded in a lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// When the holder took the lock, RFC 3339 UTC; cpstat takes it as its
    /// first step, so this is the holder's start time.
    pub started: String,
    /// The cpstat subcommand, e.g. `fetch`.
    pub command: String,
}

impl Holder {
    fn current(command: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            started: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            command: command.to_string(),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "pid={}\nstarted={}\ncommand={}\n",
            self.pid, self.started, self.command
        )
    }

    /// Parses the `key=value` lines of a lock file; `None` when there is no pid.
    pub fn parse(text: &str) -> Option<Holder> {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::trim)
        };
        Some(Holder {
            pid: value("pid")?.parse().ok()?,
            started: value("started").unwrap_or("an unknown time").to_string(),
            command: value("command").unwrap_or("unknown").to_string(),
        })
    }

    /// Whether a process with this id runs now, or `None` off Linux, where
    /// this is not checked.
    pub fn is_running(&self) -> Option<bool> {
        cfg!(target_os = "linux").then(|| Path::new(&format!("/proc/{}", self.pid)).exists())
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} (cpstat {}, started {})",
            self.pid, self.command, self.started
        )
    }
}

/// A held store lock; dropping it clears the holder record and releases it.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store at `root` for `command`, waiting up to
    /// `timeout` while another process holds it. Creates the store folder
    /// when it is missing.
    pub fn acquire(root: &Path, command: &str, timeout: Duration) -> Result<StoreLock, LockError> {
        let path = root.join(LOCK_FILE);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::snapshot::Store::new(root)
            .create_private_dir(root)
            .map_err(|e| io_error(io::Error::other(format!("{e:#}"))))?;
        let mut file = open_lock_file(&path).map_err(io_error)?;
        wait_for_lock(&file, root, &path, timeout)?;

        let previous = read_holder(&mut file);
        if let Some(previous) = previous.filter(|p| p.pid != std::process::id()) {
            log_takeover(&previous, &path);
        }
        let holder = Holder::current(command);
        write_holder(&mut file, &holder).map_err(io_error)?;
        tracing::debug!(lock = %path.display(), pid = holder.pid, "took the store lock");
        Ok(StoreLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // An empty file tells the next holder that this one released the
        // lock, not that it was killed. Closing the file releases the lock.
        if let Err(error) = self.file.set_len(0) {
            tracing::debug!(lock = %self.path.display(), %error, "failed to clear the lock file");
        }
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Polls for the lock until `timeout` has passed, logging the holder once.
fn wait_for_lock(
    file: &File,
    root: &Path,
    path: &Path,
    timeout: Duration,
) -> Result<(), LockError> {
    let started = Instant::now();
    let mut logged = false;
    loop {
        match fs4::FileExt::try_lock(file) {
            Ok(()) => return Ok(()),
            Err(fs4::TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
            Err(fs4::TryLockError::WouldBlock) => {}
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(LockError::Busy {
                store: root.to_path_buf(),
                holder: holder_text(path),
                waited: waited.as_secs(),
            });
        }
        if !logged {
            tracing::info!(holder = %holder_text(path), timeout_s = timeout.as_secs(), "waiting for the store lock");
            logged = true;
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout - waited));
    }
}

/// Describes the holder recorded in the lock file, for messages.
fn holder_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match Holder::parse(&text) {
        Some(holder) => holder.to_string(),
        // The holder may be between truncating and writing the file.
        None => "another cpstat process".to_string(),
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

fn write_holder(file: &mut File, holder: &Holder) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder.to_text().as_bytes())?;
    file.sync_data()
}

fn log_takeover(previous: &Holder, path: &Path) {
    let state = match previous.is_running() {
        Some(true) => "whose process id now belongs to another process",
        Some(false) => "which is no longer running",
        None => "which ended",
    };
    tracing::warn!(
        lock = %path.display(),
        "took over the stale store lock of {previous}, {state} without releasing it"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_text_round_trips() {
        let holder = Holder {
            pid: 4242,
            started: "2026-12-04T06:00:00Z".into(),
            command: "run".into(),
        };
        assert_eq!(Holder::parse(&holder.to_text()), Some(holder));
    }

    #[test]
    fn holder_parse_rejects_missing_pid() {
        let cases = ["", "started=2026-12-04T06:00:00Z\n", "pid=abc\n", "pid=\n"];
        for text in cases {
            assert_eq!(Holder::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn second_lock_in_process_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let first = StoreLock::acquire(dir.path(), "fetch", Duration::ZERO).unwrap();
        let error = StoreLock::acquire(dir.path(), "analyze", Duration::ZERO).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LockError::Busy { .. }), "{message}");
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("cpstat fetch"), "{message}");
        drop(first);
        StoreLock::acquire(dir.path(), "analyze", Duration::ZERO).unwrap();
    }

    #[test]
    fn released_lock_leaves_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        drop(StoreLock::acquire(dir.path(), "fetch", Duration::ZERO).unwrap());
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, "");
    }
}
