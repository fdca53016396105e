//! How a scenario reports: one JSON document (to stdout and, if asked, a
//! file) with the machine it ran on, and a flat table for reading.
use anyhow::Context;
use serde_json::{json, Value};
use std::path::Path;

/// Prints the result as an aligned table (for people) and, with `json`,
/// appends it as one JSON line to that file (for machines; `-` = stdout).
pub fn emit(result: &Value, json_out: Option<&Path>) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    flatten("", result, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    match json_out {
        Some(p) if p.as_os_str() == "-" => println!("{}", serde_json::to_string(result)?),
        Some(p) => {
            print!("{out}");
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?;
            writeln!(f, "{}", serde_json::to_string(result)?)?;
        }
        None => print!("{out}"),
    }
    Ok(())
}

fn flatten(prefix: &str, v: &Value, rows: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, rows);
            }
        }
        Value::Null => {}
        Value::String(s) => rows.push((prefix.to_owned(), s.clone())),
        other => rows.push((prefix.to_owned(), other.to_string())),
    }
}

/// Wraps a scenario's measurements with what identifies the run.
pub fn result(scenario: &str, config: Value, measured: Value) -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({
        "scenario": scenario,
        "machine": {"cores": cores, "memory_gib": mem_total_gib()},
        "config": config,
        "result": measured,
    })
}

fn mem_total_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((kb / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
