//! `RedisServer`: a private `redis-server` per test, on a free loopback port,
//! in its own temporary directory, that a test can kill and start again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options for [`RedisServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// AOF on, `appendfsync always`: nothing acknowledged is lost on a kill.
    pub aof: bool,
    /// More `redis-server` arguments, e.g. `["--requirepass", "s3cret"]`
    /// (a password given so ends up in [`RedisServer::url`]).
    pub extra_args: Vec<String>,
    /// Serve TLS only (`rediss://`), with a certificate signed by a CA made
    /// for this server with `openssl` (see [`RedisServer::ca_cert`]).
    pub tls: bool,
}

/// A running private redis-server. Killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    options: RedisOptions,
    dir: tempfile::TempDir,
}

/// How long to wait for a fresh redis-server to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

impl RedisServer {
    /// Starts a redis-server without persistence.
    pub fn start() -> std::io::Result<RedisServer> {
        RedisServer::start_with(RedisOptions::default())
    }

    /// Starts a redis-server with `options`.
    pub fn start_with(options: RedisOptions) -> std::io::Result<RedisServer> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut server = RedisServer {
            child: None,
            port,
            options,
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    /// A store on this server in namespace `t`, as the store-level tests
    /// use one.
    pub async fn store(&self) -> flinkq_shared::store::Store {
        let config = flinkq_shared::store::StoreConfig::new(self.url(), "t");
        flinkq_shared::store::Store::connect(&config)
            .await
            .expect("connect to the test redis")
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` with TLS; with the password
    /// when one is required).
    pub fn url(&self) -> String {
        let scheme = if self.options.tls { "rediss" } else { "redis" };
        match self.password() {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// A plain redis-rs connection to this server, outside any store: for
    /// the hand-run measurements that drive scripts of their own.
    pub async fn plain_connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a client for the test redis")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }

    /// The CA certificate (PEM) that signed the server's TLS certificate.
    pub fn ca_cert(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory (AOF files live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Is the process running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL: Redis dies as in a crash.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process keeps its connections but answers nothing, as a
    /// replica stalled by its host (a lagging replica that never catches
    /// up while frozen). [`RedisServer::thaw`] resumes it.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: resumes a frozen server.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let Some(child) = &self.child else { return };
        let status = Command::new("kill")
            .arg(which)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {which} {}", child.id());
    }

    /// Starts it again on the same port and directory (with AOF on, the data
    /// comes back).
    pub fn start_again(&mut self) -> std::io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let dir = self.dir.path();
        let mut command = Command::new("redis-server");
        if self.options.tls {
            if !self.ca_cert().exists() {
                make_certificates(dir)?;
            }
            command
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(dir.join("redis.crt"))
                .arg("--tls-key-file")
                .arg(dir.join("redis.key"))
                .arg("--tls-ca-cert-file")
                .arg(self.ca_cert())
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.arg("--port").arg(self.port.to_string());
        }
        command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if self.options.aof {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        command
            .args(&self.options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                std::io::Error::new(
                    e.kind(),
                    "redis-server not found on PATH: install it with `apt-get install redis-server` (scripts/test does)",
                )
            } else {
                e
            }
        })?;
        self.child = Some(child);
        self.wait_until_ready()
    }

    fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        loop {
            let answered = if self.options.tls {
                self.tls_ping()
            } else {
                ping(self.port, self.password()).is_ok()
            };
            if answered {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log =
                    std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!(
                    "redis-server exited at start ({status}); its log:\n{log}"
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// PING over TLS with `redis-cli`, trusting only this server's CA.
    fn tls_ping(&self) -> bool {
        let mut cli = Command::new("redis-cli");
        cli.args(["--tls", "--cacert"])
            .arg(self.ca_cert())
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        if let Some(password) = self.password() {
            cli.args(["--no-auth-warning", "-a", password]);
        }
        cli.arg("PING")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "PONG")
    }

    fn password(&self) -> Option<&str> {
        let args = &self.options.extra_args;
        args.iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certificates(dir: &Path) -> std::io::Result<()> {
    let openssl = |args: &[&str]| -> std::io::Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    };
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=flinkq test CA",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ])
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One RESP round trip: `AUTH` if needed, then `PING` must answer `+PONG`.
fn ping(port: u16, password: Option<&str>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    if let Some(password) = password {
        write!(
            stream,
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n",
            password.len()
        )?;
        read_line(&mut stream)?;
    }
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let line = read_line(&mut stream)?;
    if line == "+PONG" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("PING answered {line:?}")))
    }
}

fn read_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(port: u16, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("write");
        let first = read_line(&mut stream).expect("reply");
        match first.strip_prefix('$') {
            Some("-1") => "(nil)".into(),
            Some(_) => read_line(&mut stream).expect("bulk"),
            None => first,
        }
    }

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let mut redis = RedisServer::start().expect("start");
        assert!(redis.url().ends_with(&redis.port().to_string()));
        assert!(redis.is_running());
        redis.stop();
        assert!(!redis.is_running());
        assert!(
            ping(redis.port(), None).is_err(),
            "stopped means unreachable"
        );
        redis.start_again().expect("restart");
        assert!(ping(redis.port(), None).is_ok());
    }

    #[test]
    fn aof_keeps_acknowledged_writes_across_a_kill() {
        let mut redis = RedisServer::start_with(RedisOptions {
            aof: true,
            ..RedisOptions::default()
        })
        .expect("start");
        assert_eq!(command(redis.port(), &["SET", "k", "v"]), "+OK");
        redis.start_again().expect("restart");
        assert_eq!(command(redis.port(), &["GET", "k"]), "v");

        let mut volatile = RedisServer::start().expect("start");
        assert_eq!(command(volatile.port(), &["SET", "k", "v"]), "+OK");
        volatile.start_again().expect("restart");
        assert_eq!(command(volatile.port(), &["GET", "k"]), "(nil)");
    }

    #[test]
    fn passwords_are_supported() {
        let redis = RedisServer::start_with(RedisOptions {
            extra_args: vec!["--requirepass".into(), "s3cret".into()],
            ..RedisOptions::default()
        })
        .expect("start");
        assert!(command(redis.port(), &["GET", "k"]).starts_with("-NOAUTH"));
    }
}
