//! Reading Redis' own counters (commands executed, memory and CPU used) and
//! a process' CPU time.

use std::collections::HashMap;

use flinkq_shared::store::RedisConnection;

/// Redis' counters at one moment, from one `INFO stats commandstats`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Calls and time per command (`INFO commandstats`).
    pub costs: HashMap<String, CommandCost>,
    /// Reads of client sockets (`INFO stats` `total_reads_processed`): a
    /// request, or a pipeline of them, as it arrived.
    pub reads: u64,
}

impl Counters {
    /// Calls per command.
    pub fn calls(&self) -> HashMap<String, u64> {
        calls_of(&self.costs)
    }
}

/// `INFO commandstats`: calls per command.
pub async fn command_calls(conn: &mut RedisConnection) -> HashMap<String, u64> {
    counters(conn).await.calls()
}

/// The calls of each command of a [`Counters::costs`] snapshot.
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

/// Redis' counters now: calls and time per command, and client reads.
pub async fn counters(conn: &mut RedisConnection) -> Counters {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    parse_counters(&info)
}

fn parse_counters(info: &str) -> Counters {
    let costs = info
        .lines()
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
        .collect();
    let reads = info
        .lines()
        .find_map(|line| line.strip_prefix("total_reads_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Counters { costs, reads }
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
        .filter(|(name, _)| {
            !CLIENT_ONLY.contains(&name.as_str())
                && !FLINKQ_CLIENT_COMMANDS.contains(&name.as_str())
        })
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
/// blocking reads. `INFO commandstats` cannot tell a command sent by a
/// client from one run by a script; MONITOR can, but slows Redis down.
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

/// Commands flinkq's worker sends itself that its scripts run too:
/// `HGETALL`, its read of each claimed job (pipelined after the claim, see
/// `shared/src/store/claim.rs`; also the harness' progress polls), inside
/// a script only when a batch completes. Counted as requests of flinkq's
/// runs (see [`delta`]) and left out of the `(script overhead)` line of
/// [`cost_table`]. BullMQ's client sends only [`CLIENT_ONLY`] commands (its
/// scripts run `HGETALL`).
pub const FLINKQ_CLIENT_COMMANDS: &[&str] = &["hgetall"];

/// What Redis did between two [`Counters`] snapshots, without the harness'
/// own `INFO` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandDelta {
    /// Requests clients sent: the commands only a client sends
    /// ([`CLIENT_ONLY`]) and those the system measured also sends itself
    /// (see [`delta`]). Each waits for its answer, but a pipeline of them
    /// waits once: see `round_trips`.
    pub requests: u64,
    /// Network round trips: client requests as Redis read them (a pipeline
    /// that arrives in one read is one; so are the requests of concurrent
    /// callers that one connection sends together; a request larger than
    /// Redis' 16 KiB read buffer is read more than once), from `INFO stats`
    /// `total_reads_processed`.
    pub round_trips: u64,
    /// Every command, including those run inside scripts.
    pub all: u64,
}

impl CommandDelta {
    /// Without `n` requests the harness sent itself (its progress polls).
    pub fn without_harness(self, n: u64) -> Self {
        CommandDelta {
            all: self.all.saturating_sub(n),
            requests: self.requests.saturating_sub(n),
            round_trips: self.round_trips.saturating_sub(n),
        }
    }
}

/// Commands, requests and round trips between two snapshots.
/// `sent_by_clients`: commands the measured system's clients send besides
/// [`CLIENT_ONLY`] ([`FLINKQ_CLIENT_COMMANDS`] for flinkq, none for BullMQ).
pub fn delta(before: &Counters, after: &Counters, sent_by_clients: &[&str]) -> CommandDelta {
    let (before_calls, after_calls) = (before.calls(), after.calls());
    let diff = |name: &str| {
        after_calls
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before_calls.get(name).copied().unwrap_or(0))
    };
    // the harness' INFO calls: each one request, read once (the snapshot
    // `before` counts its own read, `after` its own call: the same number)
    let info = diff("info");
    CommandDelta {
        requests: CLIENT_ONLY
            .iter()
            .chain(sent_by_clients)
            .map(|n| diff(n))
            .sum(),
        round_trips: after
            .reads
            .saturating_sub(before.reads)
            .saturating_sub(info),
        all: after_calls
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

    fn counters(pairs: &[(&str, u64)], reads: u64) -> Counters {
        Counters {
            costs: pairs
                .iter()
                .map(|(k, v)| {
                    let cost = CommandCost { calls: *v, usec: 0 };
                    ((*k).to_owned(), cost)
                })
                .collect(),
            reads,
        }
    }

    #[test]
    fn requests_are_client_commands_round_trips_are_client_reads_and_info_is_the_harness() {
        let before = counters(&[("evalsha", 10), ("hset", 100), ("info", 1)], 40);
        let after = counters(
            &[
                ("evalsha", 20),
                ("hset", 150),
                ("zadd", 30),
                ("bzpopmin", 2),
                ("info", 5),
            ],
            56,
        );
        let d = delta(&before, &after, &[]);
        assert_eq!(d.round_trips, 16 - 4);
        assert_eq!(
            d.requests,
            10 + 2,
            "evalsha and bzpopmin; hset runs in scripts"
        );
        assert_eq!(d.all, 10 + 50 + 30 + 2);
        let polled = d.without_harness(2);
        assert_eq!(
            (polled.all, polled.requests, polled.round_trips),
            (90, 10, 10)
        );
        let with_hset = delta(&before, &after, &["hset"]);
        assert_eq!(with_hset.requests, 10 + 2 + 50, "hset sent by clients");
    }

    #[test]
    fn counters_read_both_sections_of_one_info() {
        let info = "# Stats\r\ntotal_connections_received:3\r\ntotal_reads_processed:1234\r\n\
                    # Commandstats\r\ncmdstat_hgetall:calls=7,usec=70,usec_per_call=10.00\r\n";
        let read = parse_counters(info);
        assert_eq!(read.reads, 1234);
        assert_eq!(read.costs["hgetall"], CommandCost { calls: 7, usec: 70 });
    }
}
