//! Reading Redis' own counters: commands executed and memory used.

use std::collections::HashMap;

use flinkq_shared::store::RedisConnection;

/// `INFO commandstats`: calls per command.
pub async fn command_calls(conn: &mut RedisConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Calls of every command between two snapshots: (round trips, all commands).
/// Round trips are the commands a client sends (EVALSHA, EVAL, INFO, PING);
/// all commands include those run inside scripts.
pub fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> (u64, u64) {
    let diff = |name: &str| {
        after
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(name).copied().unwrap_or(0))
    };
    let all: u64 = after.keys().map(|name| diff(name)).sum();
    let round_trips = ["evalsha", "eval", "ping", "script|load", "script"]
        .iter()
        .map(|n| diff(n))
        .sum();
    (round_trips, all)
}

/// `INFO memory` used_memory, bytes.
pub async fn used_memory(conn: &mut RedisConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `INFO cpu`: Redis' CPU seconds (user + system).
pub async fn redis_cpu_seconds(conn: &mut RedisConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            line.strip_prefix("used_cpu_user:")
                .or_else(|| line.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: &str) -> f64 {
    let ticks_per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // fields after the ")" that closes the command name; utime, stime are 14 and 15
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}
