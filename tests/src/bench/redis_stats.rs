//! Reading Redis' own counters (commands executed, memory and CPU used) and
//! a process' CPU time.

use std::collections::HashMap;

use flinkq_shared::store::RedisConnection;

/// `INFO commandstats`: calls per command.
pub async fn command_calls(conn: &mut RedisConnection) -> HashMap<String, u64> {
    calls_of(&command_costs(conn).await)
}

/// The calls of each command of a [`command_costs`] snapshot.
pub fn calls_of(costs: &HashMap<String, CommandCost>) -> HashMap<String, u64> {
    costs
        .iter()
        .map(|(name, cost)| (name.clone(), cost.calls))
        .collect()
}

/// One command's line of `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandCost {
    /// Times it ran (in scripts too).
    pub calls: u64,
    /// Microseconds Redis spent in it. A script call's time includes the
    /// commands it ran, which count their own time as well.
    pub usec: u64,
}

/// `INFO commandstats`: calls and time per command.
pub async fn command_costs(conn: &mut RedisConnection) -> HashMap<String, CommandCost> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| -> Option<u64> {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            let cost = CommandCost {
                calls: field("calls")?,
                usec: field("usec")?,
            };
            Some((name.to_owned(), cost))
        })
        .collect()
}

/// Where Redis' time went between two `INFO commandstats` snapshots, per
/// step: one line per command, most expensive first, each with its calls
/// and microseconds per step. A script call's line includes its commands';
/// the `(script overhead)` line is its time without them: EVALSHA itself,
/// the Lua around the commands and the reply.
pub fn cost_table(
    before: &HashMap<String, CommandCost>,
    after: &HashMap<String, CommandCost>,
    steps: f64,
) -> String {
    let mut rows: Vec<(String, CommandCost)> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .map(|(name, now)| {
            let was = before.get(name).copied().unwrap_or_default();
            let delta = CommandCost {
                calls: now.calls.saturating_sub(was.calls),
                usec: now.usec.saturating_sub(was.usec),
            };
            (name.clone(), delta)
        })
        .filter(|(_, delta)| delta.calls > 0)
        .collect();
    let scripts: u64 = rows
        .iter()
        .filter(|(name, _)| name.starts_with("eval") || name.starts_with("fcall"))
        .map(|(_, cost)| cost.usec)
        .sum();
    let inner: u64 = rows
        .iter()
        .filter(|(name, _)| !CLIENT_ONLY.contains(&name.as_str()))
        .map(|(_, cost)| cost.usec)
        .sum();
    rows.push((
        "(script overhead)".into(),
        CommandCost {
            calls: 0,
            usec: scripts.saturating_sub(inner),
        },
    ));
    rows.sort_by_key(|row| std::cmp::Reverse(row.1.usec));
    let mut out = format!("{:<20} {:>12} {:>12}\n", "command", "calls/step", "µs/step");
    for (name, cost) in rows {
        out += &format!(
            "{:<20} {:>12.3} {:>12.2}\n",
            name,
            cost.calls as f64 / steps,
            cost.usec as f64 / steps
        );
    }
    out
}

/// Commands only a client can send: script calls, connection set-up and
/// blocking reads. Neither flinkq nor BullMQ sends any other command while
/// draining (every other one runs inside a script; BullMQ's MONITOR run in
/// `../shared/bench/peers/RESULTS-2026-11-25.md` shows the same), so their
/// calls are the round trips. `INFO commandstats` cannot tell a command sent
/// by a client from one run by a script; MONITOR can, but slows Redis down.
const CLIENT_ONLY: &[&str] = &[
    "evalsha",
    "eval",
    "evalsha_ro",
    "eval_ro",
    "fcall",
    "fcall_ro",
    "script",
    "script|load",
    "script|exists",
    "ping",
    "hello",
    "auth",
    "select",
    "quit",
    "client",
    "client|setname",
    "client|setinfo",
    "client|id",
    "multi",
    "exec",
    "watch",
    "bzpopmin",
    "bzpopmax",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
];

/// Commands Redis ran between two `INFO commandstats` snapshots, without the
/// harness' own `INFO` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDelta {
    /// Commands clients sent ([`CLIENT_ONLY`]): one network round trip each
    /// (a pipeline of them would be fewer; neither peer pipelines them).
    pub round_trips: u64,
    /// Every command, including those run inside scripts.
    pub all: u64,
}

impl CommandDelta {
    /// Without `n` commands the harness sent itself (its progress polls).
    pub fn without_harness(self, n: u64) -> Self {
        CommandDelta {
            all: self.all.saturating_sub(n),
            ..self
        }
    }
}

/// Calls of every command between two snapshots.
pub fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> CommandDelta {
    let diff = |name: &str| {
        after
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(name).copied().unwrap_or(0))
    };
    CommandDelta {
        round_trips: CLIENT_ONLY.iter().map(|n| diff(n)).sum(),
        all: after
            .keys()
            .filter(|name| *name != "info")
            .map(|name| diff(name))
            .sum(),
    }
}

/// `ZCARD key` (the BullMQ yardstick's progress: its finished-job sets).
pub async fn sorted_set_len(conn: &mut RedisConnection, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn round_trips_are_client_commands_and_info_is_the_harness() {
        let before = calls(&[("evalsha", 10), ("hset", 100), ("info", 1)]);
        let after = calls(&[
            ("evalsha", 20),
            ("hset", 150),
            ("zadd", 30),
            ("bzpopmin", 2),
            ("info", 5),
        ]);
        let d = delta(&before, &after);
        assert_eq!(d.round_trips, 12);
        assert_eq!(d.all, 10 + 50 + 30 + 2);
        assert_eq!(d.without_harness(2).all, 90);
    }
}
