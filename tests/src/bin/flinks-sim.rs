//! `flinks-sim`: the Flinks simulator, by hand, serving every product. Logins get a script derived
//! from their loginId (0-3 pending answers, ~3% invalid) unless one is set
//! with `PUT /_sim/scripts/<loginId>`; `GET /_sim/stats` shows what it saw.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use flinkq_tests::sim::{DefaultScript, SimConfig, Simulator};

/// Runs the Flinks simulator until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "flinks-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FLINKS_SIM_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Require this `flinks-auth-key` header.
    #[arg(long, env = "FLINKS_SIM_AUTH_KEY", hide_env_values = true)]
    auth_key: Option<String>,
    /// Absolute session lifetime.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    session_ttl: Duration,
    /// Polls of one session closer than this are recorded as violations.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    min_poll_interval: Duration,
    /// Polls later than this after a login's first poll are violations.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    poll_timeout: Duration,
    /// Share of calls answered 503 at random (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    random_5xx_rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sim = Simulator::start(SimConfig {
        bind: args.addr,
        auth_key: args.auth_key,
        session_ttl: args.session_ttl,
        min_poll_interval: args.min_poll_interval,
        poll_timeout: args.poll_timeout,
        default_script: DefaultScript::FromLoginId,
        random_5xx_rate: args.random_5xx_rate,
    })
    .await?;
    println!("FLINKQ_FLINKS_URL={}", sim.banking_base_url());
    println!("FLINKQ_WEALTH_URL={}", sim.wealth_base_url());
    println!("stats: {}/_sim/stats", sim.base_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown();
    Ok(())
}
