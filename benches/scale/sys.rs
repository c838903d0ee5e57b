//! The operating-system side of the scale benchmark: CPU pinning, the
//! open-files limit, a measured process's CPU time and memory from
//! `/proc` and its CPU-time clock, and starting and stopping such a process.

use anyhow::{Context, bail};
use std::time::Duration;
use tokio::time::Instant;

/// How long SIGTERM may take before SIGKILL.
pub const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Which CPUs the measured process and the bench (farm) run on, if pinned.
#[derive(Clone, Copy)]
pub struct Pinning {
    pub daemon_cpu: usize,
    pub farm_cpu: usize,
}

pub fn cpu_set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid;
    // CPU_ZERO/CPU_SET only write inside it (cpu < CPU_SETSIZE is checked
    // by the callers, which take CPUs from sched_getaffinity).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: all-zero is a valid cpu_set_t; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Ok((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// Pins the calling thread (and every thread it creates later) to `cpu`.
pub fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    let set = cpu_set_of(cpu);
    // SAFETY: `set` is a valid, initialised cpu_set_t of the size passed;
    // pid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity(CPU {cpu})"));
    }
    Ok(())
}

/// Raises this process's open-files soft limit to the hard limit (children
/// inherit it).
pub fn raise_nofile() -> anyhow::Result<u64> {
    // SAFETY: getrlimit/setrlimit read/write exactly one rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
            }
        }
        Ok(lim.rlim_cur)
    }
}

pub fn clock_ticks_per_second() -> anyhow::Result<u64> {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(t as u64)
}

/// A process's CPU time (every thread, exited ones included), read two ways.
#[derive(Clone, Copy, Debug)]
pub struct CpuTime {
    /// utime + stime of `/proc/PID/stat`, in clock ticks.
    pub ticks: u64,
    /// The process CPU-time clock (`clock_getcpuclockid`), in ns, when the
    /// kernel lets us read it.
    pub ns: Option<u64>,
}

impl CpuTime {
    pub fn read(pid: u32) -> anyhow::Result<CpuTime> {
        Ok(CpuTime {
            ticks: cpu_ticks(pid)?,
            ns: cpu_clock_ns(pid),
        })
    }

    /// Seconds of CPU from `self` to `later`: from the ns clock when both
    /// readings have it, else from the ticks.
    pub fn seconds_until(&self, later: &CpuTime, clk_tck: u64) -> f64 {
        match (self.ns, later.ns) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
            _ => later.ticks.saturating_sub(self.ticks) as f64 / clk_tck as f64,
        }
    }

    /// Seconds of CPU from `self` to `later` by the ticks alone.
    pub fn tick_seconds_until(&self, later: &CpuTime, clk_tck: u64) -> f64 {
        later.ticks.saturating_sub(self.ticks) as f64 / clk_tck as f64
    }
}

/// utime + stime of `pid`, in clock ticks (every thread of the process).
/// The kernel scales both so that their sum is the precise run time, cut to
/// whole ticks: a delta is good to ±1 tick.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces: split after its ')'.
    let rest = &stat[stat.rfind(')').context("no ')' in /proc/PID/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?
            .parse()
            .with_context(|| format!("bad field in {path}"))
    };
    Ok(field(11)? + field(12)?)
}

/// The CPU time of process `pid` in ns, from its process CPU-time clock
/// (the same sum as utime + stime, without the tick rounding).
pub fn cpu_clock_ns(pid: u32) -> Option<u64> {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls write exactly one value of the type pointed to;
    // `pid` is our own child, not yet reaped.
    unsafe {
        if libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) != 0 {
            return None;
        }
        if libc::clock_gettime(clock, &mut ts) != 0 {
            return None;
        }
    }
    Some(u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?)
}

/// A `kB` field of /proc/PID/status, in KiB.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("no {key} in {path}"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad {key} in {path}: {line:?}"))
}

/// Makes `cmd`'s process run on `cpu` only (set in the child before exec).
pub fn pin_command(cmd: &mut tokio::process::Command, cpu: usize) {
    let set = cpu_set_of(cpu);
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it makes one raw syscall
    // (sched_setaffinity on the child itself, pid 0) on a cpu_set_t that
    // was built before the fork and is copied into the closure; it does
    // not allocate or take locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to our child `pid`.
pub fn signal(pid: u32, signal: libc::c_int) -> anyhow::Result<()> {
    // SAFETY: kill(2) with the PID of our own child, which has not been
    // reaped yet (the caller still holds it and has not waited on it), so
    // the PID cannot have been reused.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("kill({signal})"));
    }
    Ok(())
}

/// Sends SIGTERM to the child, waits up to [`STOP_LIMIT`], then SIGKILL.
pub async fn stop_child(child: &mut tokio::process::Child, pid: u32) -> anyhow::Result<String> {
    let t = Instant::now();
    if let Some(status) = child.try_wait()? {
        return Ok(format!("had already exited ({status})"));
    }
    signal(pid, libc::SIGTERM)?;
    match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
        Ok(status) => Ok(format!(
            "stopped by SIGTERM in {:.3} s ({})",
            t.elapsed().as_secs_f64(),
            status?
        )),
        Err(_) => {
            child.start_kill()?;
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .context("the process did not die after SIGKILL")??;
            Ok(format!(
                "did NOT stop within {}s of SIGTERM; killed ({status})",
                STOP_LIMIT.as_secs()
            ))
        }
    }
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
