//! What a scenario measures: latency histograms, and samples of the server
//! process and machine (RSS, CPU, /metrics).
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::common::Target;
use crate::report::round2;

/// A latency histogram in nanoseconds, 1 µs .. 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 600_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.max(1_000));
}

/// p50/p90/p99/p99.9/max in milliseconds.
pub fn summary(h: &Histogram<u64>) -> Value {
    let ms = |ns: u64| (ns as f64 / 1e6 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p99_9_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 1e6 * 1000.0).round() / 1000.0,
    })
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of a process so far, in seconds.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

/// Busy CPU seconds of the whole machine so far (all cores; /proc/stat).
pub fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    let total: f64 = f.iter().take(8).sum();
    let idle = f.get(3)? + f.get(4)?;
    Some((total - idle) / 100.0)
}

/// CPU seconds of the server, of this process and of the whole machine,
/// sampled together.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    server: Option<f64>,
    bench: Option<f64>,
    machine: Option<f64>,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server_pid.and_then(|p| cpu_secs(Some(p))),
            bench: cpu_secs(None),
            machine: machine_busy_secs(),
        }
    }

    /// Cores used by the server, by this process, and by everything else on
    /// the machine (other work sharing it) since `self`.
    pub fn cores_since(&self, server_pid: Option<u32>) -> Value {
        let now = Self::take(server_pid);
        let secs = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = |a: Option<f64>, b: Option<f64>| {
            a.zip(b)
                .map(|(a, b)| ((b - a) / secs * 100.0).round() / 100.0)
        };
        let (server, bench, machine) = (
            cores(self.server, now.server),
            cores(self.bench, now.bench),
            cores(self.machine, now.machine),
        );
        let other =
            machine.map(|m| round2((m - server.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0)));
        json!({
            "server_cores": server,
            "bench_cores": bench,
            "machine_busy_cores": machine,
            "other_processes_cores": other,
        })
    }
}

/// `name_sum` and `name_count` of a Prometheus histogram on /metrics.
pub async fn metric_sum_count(target: &Target, name: &str) -> Option<(f64, f64)> {
    // The servers the bench scripts start set the same `metrics_token`.
    let token = std::env::var("VESTNIK_METRICS_TOKEN").unwrap_or_default();
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", target.base))
        .bearer_auth(token)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |suffix: &str| -> Option<f64> {
        let key = format!("{name}_{suffix}");
        text.lines()
            .find(|l| l.split([' ', '{']).next() == Some(key.as_str()))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    Some((value("sum").unwrap_or(0.0), value("count").unwrap_or(0.0)))
}
