//! Scale-out benchmark (`cargo bench --bench nats`, NATS with JetStream on 127.0.0.1:4222):
//! 1,000 short attempts (`run: [/bin/true]`, a fan-out) run by the local engine and by a
//! coordinator with 1, 2, 4 and 8 workers on loopback, and the latency NATS adds to one
//! attempt (a chain of 50 phases, so no two overlap); then the same with the streams in memory
//! instead of files (`SPECTACULAR_NATS_STORAGE=memory`). Prints wall time and the CPU time the
//! spectacular processes and the NATS server spent per attempt (on a loaded machine, CPU time
//! says more than wall time); asserts nothing about time.
//!
//! `NATS_BENCH_N` sets the fan-out's size (default 1,000). Without a reachable server it says
//! so and measures nothing (it fails with `CI=true`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NATS: &str = "127.0.0.1:4222";

fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_spectacular"));
    assert!(bin.is_file(), "`{}` is missing", bin.display());
    bin
}

fn fan(n: usize) -> String {
    format!("mission: fan\nphases:\n  fan:\n    run: [/bin/true]\n    for_each: 'range(0, {n})'\n")
}

fn chain(n: usize) -> String {
    let mut m = String::from("mission: chain\nphases:\n");
    for i in 0..n {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [p{}]", i - 1)
        };
        m.push_str(&format!("  p{i}: {{ run: [/bin/true]{needs} }}\n"));
    }
    m
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn workers(bin: &Path, n: usize, prefix: &str, dir: &Path, storage: &str) -> Workers {
    let children = (0..n)
        .map(|i| {
            Command::new(bin)
                .args(["worker", "--nats", &format!("nats://{NATS}")])
                .arg("--dir")
                .arg(dir.join(format!("w{i}")))
                .env("SPECTACULAR_NATS_PREFIX", prefix)
                .env("SPECTACULAR_NATS_STORAGE", storage)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    // Let them connect and make their consumers (not part of the measurement).
    std::thread::sleep(Duration::from_millis(1500));
    Workers(children)
}

fn run(bin: &Path, mission: &Path, parallel: usize, nats: Option<(&str, &str)>) -> Duration {
    let store = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(bin);
    command
        .args(["run", mission.to_str().unwrap()])
        .args(["--max-parallel", &parallel.to_string()])
        .arg("--store")
        .arg(store.path())
        .env_remove("SPECTACULAR_NATS")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((prefix, storage)) = nats {
        command
            .args(["--nats", &format!("nats://{NATS}")])
            .env("SPECTACULAR_NATS_PREFIX", prefix)
            .env("SPECTACULAR_NATS_STORAGE", storage);
    }
    let start = Instant::now();
    let status = command.status().expect("run spectacular");
    let elapsed = start.elapsed();
    assert!(status.success(), "the benchmark run failed");
    elapsed
}

/// CPU time (user + system) of this process's reaped children so far.
fn children_cpu() -> Duration {
    // SAFETY: a zeroed rusage is valid plain data, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time of the NATS server so far (Linux: `/proc/<pid>/stat` of the process named
/// `nats-server`), if it runs on this machine.
fn server_cpu() -> Option<Duration> {
    // SAFETY: sysconf reads a system setting.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim() != "nats-server" {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let used: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        return Some(Duration::from_millis(used * 1000 / ticks));
    }
    None
}

/// Measure `body` (which runs and reaps processes): wall time, and CPU ms per attempt of the
/// spectacular processes and of the NATS server.
fn measured(attempts: usize, body: impl FnOnce() -> Duration) -> (Duration, f64, Option<f64>) {
    let (ours, server) = (children_cpu(), server_cpu());
    let wall = body();
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / attempts as f64;
    let ours = per(children_cpu() - ours);
    let server = server.zip(server_cpu()).map(|(a, b)| per(b - a));
    (wall, ours, server)
}

fn line(label: &str, attempts: usize, (wall, ours, server): (Duration, f64, Option<f64>)) {
    let server = server.map_or("?".to_string(), |s| format!("{s:.2}"));
    println!(
        "  {label:<30} {:>7.0} ms  {:>6.0} attempts/s  cpu/attempt: spectacular {ours:.2} ms, nats-server {server} ms",
        wall.as_secs_f64() * 1000.0,
        attempts as f64 / wall.as_secs_f64()
    );
}

fn main() {
    if TcpStream::connect(NATS).is_err() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "NATS is not reachable at {NATS} and CI=true"
        );
        println!("nats: skipped: NATS is not reachable at {NATS}");
        return;
    }
    let n: usize = std::env::var("NATS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let bin = binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let fan_path = dir.path().join("fan.yaml");
    std::fs::write(&fan_path, fan(n)).unwrap();
    let chain_path = dir.path().join("chain.yaml");
    std::fs::write(&chain_path, chain(50)).unwrap();
    let stamp = std::process::id();

    println!("{n} attempts of `/bin/true` (a fan-out):");
    let local = measured(n, || run(&bin, &fan_path, 8, None));
    line("local engine, 8 at a time", n, local);
    for storage in ["file", "memory"] {
        println!("streams in {storage}:");
        for count in [1usize, 2, 4, 8] {
            if storage == "memory" && count != 4 {
                continue;
            }
            let prefix = format!("bench{stamp}{storage}w{count}");
            let figures = measured(n, || {
                let _workers = workers(&bin, count, &prefix, dir.path(), storage);
                run(&bin, &fan_path, 2 * count, Some((&prefix, storage)))
            });
            line(&format!("{count} worker(s) over NATS"), n, figures);
        }
        println!("  latency added per attempt (a chain of 50, one at a time):");
        let local = run(&bin, &chain_path, 1, None);
        let prefix = format!("bench{stamp}{storage}chain");
        let remote = {
            let _workers = workers(&bin, 1, &prefix, dir.path(), storage);
            run(&bin, &chain_path, 1, Some((&prefix, storage)))
        };
        println!(
            "  local {:.1} ms/attempt, over NATS {:.1} ms/attempt: +{:.1} ms",
            local.as_secs_f64() * 1000.0 / 50.0,
            remote.as_secs_f64() * 1000.0 / 50.0,
            (remote.as_secs_f64() - local.as_secs_f64()) * 1000.0 / 50.0
        );
    }
}
