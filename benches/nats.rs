//! Scale-out benchmark (`cargo bench --bench nats`, NATS with JetStream on 127.0.0.1:4222):
//! 1,000 short attempts (`run: [/bin/true]`, a fan-out) run by the local engine and by a
//! coordinator with 1, 2, 4 and 8 workers on loopback, and the latency NATS adds to one
//! attempt (a chain of 50 phases, so no two overlap). Prints figures; asserts nothing about time.
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

fn workers(bin: &Path, n: usize, prefix: &str, dir: &Path) -> Workers {
    let children = (0..n)
        .map(|i| {
            Command::new(bin)
                .args(["worker", "--nats", &format!("nats://{NATS}")])
                .arg("--dir")
                .arg(dir.join(format!("w{i}")))
                .env("SPECTACULAR_NATS_PREFIX", prefix)
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

fn run(bin: &Path, mission: &Path, parallel: usize, nats: Option<&str>) -> Duration {
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
    if let Some(prefix) = nats {
        command
            .args(["--nats", &format!("nats://{NATS}")])
            .env("SPECTACULAR_NATS_PREFIX", prefix);
    }
    let start = Instant::now();
    let status = command.status().expect("run spectacular");
    let elapsed = start.elapsed();
    assert!(status.success(), "the benchmark run failed");
    elapsed
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
    let local = run(&bin, &fan_path, 8, None);
    println!(
        "  local engine, 8 at a time:  {:>7.0} ms  {:>6.0} attempts/s",
        local.as_secs_f64() * 1000.0,
        n as f64 / local.as_secs_f64()
    );
    for count in [1usize, 2, 4, 8] {
        let prefix = format!("bench{stamp}w{count}");
        let _workers = workers(&bin, count, &prefix, dir.path());
        let took = run(&bin, &fan_path, 2 * count, Some(&prefix));
        println!(
            "  {count} worker(s) over NATS:     {:>7.0} ms  {:>6.0} attempts/s",
            took.as_secs_f64() * 1000.0,
            n as f64 / took.as_secs_f64()
        );
    }
    println!("latency added per attempt (a chain of 50, one at a time):");
    let local = run(&bin, &chain_path, 1, None);
    let prefix = format!("bench{stamp}chain");
    let _workers = workers(&bin, 1, &prefix, dir.path());
    let remote = run(&bin, &chain_path, 1, Some(&prefix));
    println!(
        "  local {:.1} ms/attempt, over NATS {:.1} ms/attempt: +{:.1} ms",
        local.as_secs_f64() * 1000.0 / 50.0,
        remote.as_secs_f64() * 1000.0 / 50.0,
        (remote.as_secs_f64() - local.as_secs_f64()) * 1000.0 / 50.0
    );
}
