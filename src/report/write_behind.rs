//! A large output file written behind: sent to disk as it grows, and dropped from the
//! page cache once it is there.
//!
//! A dry run of a million records writes over a gigabyte of payloads. Left to the kernel,
//! every page of it stays cached (and dirty until writeback reaches it), so each run takes
//! a gigabyte of fresh page cache. On the shared VMs this tool is measured on, fresh pages
//! are what cost: writing 1.3 GB took 0.4 to 9 s of system time from one run to the next,
//! on the dry run's one writing thread, against 0.5 to 0.6 s written behind (bench/README,
//! "Writing behind"). Written behind, each full window is handed to writeback at once, and
//! the window `LAG` windows earlier is waited for and dropped, so the file never holds more
//! than `LAG + 1` windows of cache and the writer reuses the same pages. The writer only
//! waits when the disk is `LAG` windows behind it. PostgreSQL's `*_flush_after` settings
//! do the same, for the same reason.
//!
//! The calls are advice about the cache, except that waiting for writeback also reports a
//! failed one (an I/O error, a full disk), which is then the write's error: better now,
//! naming the file, than never. Where they are not supported (not Linux, a pipe, a file
//! system without them) the file is written as a plain one.

use std::fs::File;
use std::io::{self, Write};

/// Bytes handed to writeback at a time.
const WINDOW: u64 = 8 << 20;
/// Windows kept in the cache behind the one being written.
const LAG: u64 = 4;

pub(crate) struct WriteBehind {
    file: File,
    window: u64,
    /// Bytes written so far.
    written: u64,
    /// Everything before this offset has been handed to writeback.
    started: u64,
    /// Everything before this offset has been written back and dropped from the cache.
    dropped: u64,
    /// False once a call was not supported: the rest is written plainly.
    advise: bool,
}

impl WriteBehind {
    pub(crate) fn new(file: File) -> WriteBehind {
        WriteBehind::with_window(file, WINDOW)
    }

    fn with_window(file: File, window: u64) -> WriteBehind {
        WriteBehind {
            file,
            window,
            written: 0,
            started: 0,
            dropped: 0,
            advise: cfg!(target_os = "linux"),
        }
    }

    fn behind(&mut self) -> io::Result<()> {
        let (from, len) = (self.started, self.written - self.started);
        self.started = self.written;
        if !self.advise(sys::start_writeback(&self.file, from, len))? {
            return Ok(());
        }
        while self.started - self.dropped > LAG * self.window {
            let from = self.dropped;
            if !self.advise(sys::drop_written(&self.file, from, self.window))? {
                return Ok(());
            }
            self.dropped += self.window;
        }
        Ok(())
    }

    /// Ok(false), and no more advice, when the call is not supported here.
    fn advise(&mut self, r: io::Result<()>) -> io::Result<bool> {
        match r {
            Ok(()) => Ok(true),
            Err(e) if sys::unsupported(&e) => {
                self.advise = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.advise && self.written - self.started >= self.window {
            self.behind()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    /// Starts writeback of a range without waiting for it.
    pub(super) fn start_writeback(file: &File, from: u64, len: u64) -> io::Result<()> {
        sync_file_range(file, from, len, libc::SYNC_FILE_RANGE_WRITE)
    }

    /// Waits until a range is on disk (reporting a failed writeback), then drops it from
    /// the page cache.
    pub(super) fn drop_written(file: &File, from: u64, len: u64) -> io::Result<()> {
        sync_file_range(
            file,
            from,
            len,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )?;
        let (from, len) = offsets(from, len)?;
        // SAFETY: a plain call on a descriptor `file` keeps open; it reads no memory.
        match unsafe { libc::posix_fadvise(file.as_raw_fd(), from, len, libc::POSIX_FADV_DONTNEED) }
        {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }

    fn sync_file_range(file: &File, from: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
        let (from, len) = offsets(from, len)?;
        // SAFETY: as above.
        match unsafe { libc::sync_file_range(file.as_raw_fd(), from, len, flags) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn offsets(from: u64, len: u64) -> io::Result<(libc::off64_t, libc::off64_t)> {
        match (libc::off64_t::try_from(from), libc::off64_t::try_from(len)) {
            (Ok(f), Ok(l)) => Ok((f, l)),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    /// Not a regular file, or a file system (or kernel) without the call.
    pub(super) fn unsupported(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::ESPIPE | libc::ENOSYS | libc::EOPNOTSUPP)
        )
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::fs::File;
    use std::io;

    pub(super) fn start_writeback(_: &File, _: u64, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn drop_written(_: &File, _: u64, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn unsupported(_: &io::Error) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes of every size across many windows come back byte for byte, and the windows
    /// behind the last `LAG` were dropped as they went.
    #[test]
    fn the_file_holds_every_byte_written_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let window = 4096;
        let mut w = WriteBehind::with_window(File::create(&path).unwrap(), window);
        let mut expected = Vec::new();
        for i in 0..400u32 {
            let chunk: Vec<u8> = (0..(i * 37) % 3000).map(|j| (i + j) as u8).collect();
            w.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        w.flush().unwrap();
        assert_eq!(w.written, expected.len() as u64);
        if w.advise {
            assert!(w.dropped >= w.written - (LAG + 2) * window, "{}", w.dropped);
        }
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    /// A character device supports none of it: the writes still go through.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_device_is_written_plainly() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let mut w = WriteBehind::with_window(file, 4096);
        for _ in 0..10 {
            w.write_all(&[7; 3000]).unwrap();
        }
        assert!(!w.advise);
        assert_eq!(w.written, 30_000);
    }
}
