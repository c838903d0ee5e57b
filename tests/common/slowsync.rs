//! Slow storage without touching the machine: `slowsync.c`, built here with
//! the system's C compiler into a shared library that a daemon the test
//! starts preloads (`LD_PRELOAD`), makes every fsync and fdatasync of that
//! process take `SLOWSYNC_MS` milliseconds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the library into `dir` and returns its path.
pub fn build(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/slowsync.c");
    let out = dir.join("libslowsync.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-ldl")
        .status()
        .expect("cannot run cc: the slow-storage tests need a C compiler (gcc)");
    assert!(status.success(), "cc could not build {}", src.display());
    out
}

/// The environment that makes a child's syncs take `ms` milliseconds.
pub fn env(lib: &Path, ms: u64) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_string(), lib.display().to_string()),
        ("SLOWSYNC_MS".to_string(), ms.to_string()),
    ]
}
