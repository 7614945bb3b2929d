//! Changes to one file, through inotify on its directory: a file replaced by rename, created
//! or deleted is seen as well as one written in place. Used by `track_file`.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;

use crate::NetError;

/// Watches the directory of a file; [`FileWatch::changed`] returns after something in it
/// changed (the caller reads the file again).
pub struct FileWatch {
    fd: AsyncFd<InotifyFd>,
    file: PathBuf,
}

/// tokio's `AsyncFd` wants `AsRawFd`, which nix's `Inotify` does not implement.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl FileWatch {
    pub fn new(file: &Path) -> Result<FileWatch, NetError> {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let io = |what| move |e: nix::Error| NetError::io(what)(e.into());
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(io("creating an inotify instance"))?;
        inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_MODIFY,
            )
            .map_err(io("watching the file's directory"))?;
        Ok(FileWatch {
            fd: register(InotifyFd(inotify))?,
            file: file.to_path_buf(),
        })
    }

    /// Waits until the watched file may have changed.
    pub async fn changed(&self) -> Result<(), NetError> {
        let name = self.file.file_name();
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(NetError::io("waiting for inotify"))?;
            let mut ours = false;
            while let Ok(events) = guard.get_inner().0.read_events() {
                if events.is_empty() {
                    break;
                }
                ours |= events
                    .iter()
                    .any(|e| e.name.is_none() || e.name.as_deref() == name);
            }
            guard.clear_ready();
            if ours {
                return Ok(());
            }
        }
    }
}

#[allow(unsafe_code)]
fn register(i: InotifyFd) -> Result<AsyncFd<InotifyFd>, NetError> {
    // SAFETY: `AsyncFd::register` requires that the descriptor stays open and is registered
    // nowhere else while the `AsyncFd` lives. The `Inotify` is moved in and owned by it; its
    // descriptor is only read through `read_events` and closed when the `AsyncFd` drops.
    unsafe { AsyncFd::register(i) }.map_err(|e| NetError::Io {
        what: "registering inotify with tokio",
        source: std::io::Error::other(e.to_string()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn writes_renames_and_deletes_are_seen_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w");
        let watch = FileWatch::new(&f).unwrap();
        let seen = || tokio::time::timeout(Duration::from_secs(5), watch.changed());
        std::fs::write(&f, "1").unwrap();
        seen().await.unwrap().unwrap();
        let tmp = dir.path().join("w.tmp");
        std::fs::write(&tmp, "2").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        seen().await.unwrap().unwrap();
        std::fs::remove_file(&f).unwrap();
        seen().await.unwrap().unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(200), watch.changed()).await;
        assert!(
            quiet.is_err(),
            "another file in the directory is not a change"
        );
    }
}
