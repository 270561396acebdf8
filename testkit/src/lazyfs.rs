//! Power cuts with LazyFS (`../shared/tools/lazyfs/`, MIT, the FUSE file
//! system Jepsen uses): a folder mounted through it keeps every write in
//! LazyFS's own cache until the writer fsyncs it, and
//! [`LazyFs::power_cut`] throws away whatever was not fsynced, as losing
//! power would. A killed process only loses what it had not yet written;
//! a power cut also loses what it wrote but never synced.
//!
//! The binary is found at `$LAZYFS`, else at `target/lazyfs/lazyfs/lazyfs`
//! (where `.ci/run` builds it). Without it, or without FUSE, [`LazyFs::mount`]
//! says why and the caller prints SKIPPED.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A LazyFS mount over a backing folder, unmounted when dropped.
#[derive(Debug)]
pub struct LazyFs {
    /// Where the file system is mounted: put the data here.
    pub mount: PathBuf,
    /// The folder LazyFS writes through to (what survives a power cut).
    pub backing: PathBuf,
    fifo: PathBuf,
    done: std::io::BufReader<std::fs::File>,
    child: Child,
    /// How many power cuts were injected.
    pub cuts: u32,
}

/// The LazyFS binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LAZYFS") {
        return Some(PathBuf::from(p));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lazyfs/lazyfs/lazyfs");
    built.is_file().then_some(built)
}

fn is_mounted(mount: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mount.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_ref()) && l.contains("fuse.lazyfs"))
}

impl LazyFs {
    /// Mounts LazyFS at `dir/mnt` over `dir/backing` (put starting data in
    /// `dir/backing` before: it is durable). `Err` says why it
    /// cannot run here (no binary, no FUSE): the test prints SKIPPED.
    pub fn mount(dir: &Path) -> Result<LazyFs, String> {
        let bin = binary().ok_or(
            "no LazyFS binary: set LAZYFS, or build it with \
             `bash ../shared/tools/lazyfs/build.sh target/lazyfs` (.ci/run does)",
        )?;
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing (no FUSE on this machine)".into());
        }
        if std::process::Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_err()
        {
            return Err("fusermount3 is missing (Debian package fuse3)".into());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let dir = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
        let (mount, backing) = (dir.join("mnt"), dir.join("backing"));
        for d in [&mount, &backing] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        let (fifo, done_path) = (dir.join("faults.fifo"), dir.join("faults-done.fifo"));
        let config = dir.join("lazyfs.toml");
        // The cache is far larger than anything written between two
        // fsyncs, so nothing reaches the backing folder unsynced by
        // eviction.
        std::fs::write(
            &config,
            format!(
                "[faults]\nfifo_path=\"{}\"\nfifo_path_completed=\"{}\"\n\
                 [cache]\napply_eviction=false\n\
                 [cache.simple]\ncustom_size=\"512mb\"\nblocks_per_page=1\n\
                 [filesystem]\nlog_all_operations=false\nlogfile=\"\"\n",
                fifo.display(),
                done_path.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("lazyfs.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new(&bin)
            .arg(&mount)
            .arg("--config-path")
            .arg(&config)
            .args(["-o", "modules=subdir", "-o"])
            .arg(format!("subdir={}", backing.display()))
            .arg("-f")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&mount) {
            if let Ok(Some(st)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("lazyfs.log")).unwrap_or_default();
                return Err(format!("LazyFS exited ({st}) without mounting: {log}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("LazyFS did not mount within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // LazyFS handles no command until its ack FIFO is open for reading;
        // opened read-write, the open itself never blocks.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done_path.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let done = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&done_path)
            .map_err(|e| format!("cannot open LazyFS's ack FIFO: {e}"))?;
        Ok(LazyFs {
            mount,
            backing,
            fifo,
            done: std::io::BufReader::new(done),
            child,
            cuts: 0,
        })
    }

    /// Loses power: every write not fsynced since it was made is gone.
    /// Stop the programs that write here first (a file held open across
    /// the cut may still be served from the kernel's cache).
    pub fn power_cut(&mut self) {
        self.command("lazyfs::clear-cache", "finished::clear-cache");
        self.cuts += 1;
    }

    // Only clear-cache is acknowledged by upstream LazyFS.
    fn command(&mut self, command: &str, ack: &str) {
        std::fs::write(&self.fifo, format!("{command}\n")).unwrap();
        let mut line = String::new();
        self.done.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), ack, "LazyFS answered {line:?} to {command}");
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mount)
            .status();
        if is_mounted(&self.mount) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mount)
                .status();
        }
        // Upstream LazyFS aborts on unmount (it never joins its fault
        // thread); the mount being gone is what counts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
