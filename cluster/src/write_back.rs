//! [`WriteBack`]: a file written in large amounts that reaches the disk as it goes, not all
//! at its final sync.
//!
//! Why: a snapshot's export is hundreds of megabytes, and the kernel keeps written pages
//! dirty until a tenth of the memory is (gigabytes on a large machine), so without this
//! the whole file went to the disk at its `fsync`, and every `fdatasync` of the Raft log
//! and of the journals issued meanwhile, on this member and any other on the same disk,
//! queued behind it: clients of the leader waited up to a second. Started every
//! [`WINDOW`] bytes (`sync_file_range`, as PostgreSQL's `checkpoint_flush_after` does),
//! with at most two windows in flight, the write-back is spread over the export and the
//! final sync has little left to do. Not a durability step: the file is synced after.

use std::fs::File;
use std::io::{self, Write};

/// Bytes written before their write-back is started.
pub(crate) const WINDOW: u64 = 8 * 1024 * 1024;

/// Writes to a file, starting the write-back of each [`WINDOW`] once it is written and
/// waiting for the one before it (so at most two windows are dirty at a time).
pub(crate) struct WriteBack<'a> {
    file: &'a File,
    written: u64,
    /// Where the window not yet handed to the write-back starts.
    started: u64,
    /// Where the window handed over last starts (it ends at `started`).
    previous: u64,
    /// Cleared when the file system refuses `sync_file_range`: the write-back is a hint,
    /// the final sync is what makes the file durable, so the writes go on without it.
    hinting: bool,
}

impl<'a> WriteBack<'a> {
    /// Writes to `file` from its current position, assumed to be its start.
    pub(crate) fn new(file: &'a File) -> Self {
        WriteBack {
            file,
            written: 0,
            started: 0,
            previous: 0,
            hinting: true,
        }
    }

    #[cfg(target_os = "linux")]
    fn write_back(&mut self) {
        if self.hinting && self.hint().is_err() {
            self.hinting = false;
        }
        self.previous = self.started;
        self.started = self.written;
    }

    #[cfg(target_os = "linux")]
    fn hint(&self) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        let range = |fd, from: u64, len: u64, flags| {
            // SAFETY: sync_file_range reads no memory of ours; `fd` is open for the
            // lifetime of `self.file`.
            let rc = unsafe { libc::sync_file_range(fd, from as i64, len as i64, flags) };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        let fd = self.file.as_raw_fd();
        range(
            fd,
            self.started,
            self.written - self.started,
            libc::SYNC_FILE_RANGE_WRITE,
        )?;
        if self.started > self.previous {
            range(
                fd,
                self.previous,
                self.started - self.previous,
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            )?;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn write_back(&mut self) {
        self.previous = self.started;
        self.started = self.written;
    }
}

impl Write for WriteBack<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WINDOW {
            self.write_back();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&mut &*self.file).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What goes through is the file's content, byte for byte, across several windows.
    #[test]
    fn the_file_holds_what_was_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        let file = File::create(&path).expect("create");
        let mut w = WriteBack::new(&file);
        let piece: Vec<u8> = (0..=255u8).cycle().take(1_000_003).collect();
        let mut expected = Vec::new();
        for _ in 0..20 {
            w.write_all(&piece).expect("write");
            expected.extend_from_slice(&piece);
        }
        w.flush().expect("flush");
        assert!(
            w.started >= 2 * WINDOW,
            "two windows or more were handed over"
        );
        file.sync_all().expect("sync");
        let mut read = Vec::new();
        File::open(&path)
            .expect("open")
            .read_to_end(&mut read)
            .expect("read");
        assert_eq!(read.len(), expected.len());
        assert!(read == expected, "the file holds what was written");
    }
}
