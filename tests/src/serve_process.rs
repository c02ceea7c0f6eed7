//! A real `flinkq serve` process on a free loopback port, and a reader of
//! its Server-Sent Events, for the HTTP API tests.

use std::time::{Duration, Instant};

use crate::scenario::Scenario;
use crate::sim::Script;
use crate::worker_process::{FlinkqProcess, flinkq_command, free_port, wait_for};

/// The full-access token [`ServeProcess::start`] sets.
pub const FULL_TOKEN: &str = "full-token-for-tests-0123456789";
/// The read-only token [`ServeProcess::start`] sets.
pub const READ_TOKEN: &str = "read-token-for-tests-9876543210";

/// A running `flinkq serve`. SIGKILLed when dropped.
#[derive(Debug)]
pub struct ServeProcess {
    /// The process (its stderr is the server's log).
    pub process: FlinkqProcess,
    /// Where it listens.
    pub port: u16,
}

impl ServeProcess {
    /// `flinkq serve` on `world`'s Redis and namespace with both tokens
    /// ([`FULL_TOKEN`], [`READ_TOKEN`]) and `env`; returns once its health
    /// endpoint answers 200.
    pub async fn start(world: &Scenario, env: &[(&str, &str)]) -> ServeProcess {
        let mut all = vec![
            ("FLINKQ_API_TOKEN", FULL_TOKEN),
            ("FLINKQ_API_READ_TOKEN", READ_TOKEN),
        ];
        all.extend_from_slice(env);
        ServeProcess::start_with(world, &all).await
    }

    /// `flinkq serve` with exactly `env` (no token unless given).
    pub async fn start_with(world: &Scenario, env: &[(&str, &str)]) -> ServeProcess {
        let port = free_port();
        let mut command = flinkq_command(&world.redis.url(), &world.setup.namespace);
        command
            .arg("serve")
            .env("FLINKQ_SERVE_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let mut process =
            FlinkqProcess::spawn(command, world.work.path(), &format!("serve-{port}"));
        let url = format!("http://127.0.0.1:{port}/api/v1/health");
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().as_u16() == 200
            {
                break;
            }
            if let Some(status) = process.try_exit_status() {
                panic!(
                    "flinkq serve exited ({status}) before answering:\n{}",
                    process.stderr()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "flinkq serve did not answer within 30s:\n{}",
                process.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServeProcess { process, port }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A client request to `path` with `token` as bearer (`None`: no header).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = reqwest::Client::new().request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GET `path` with the full token: status and JSON body.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        send_json(self.request(reqwest::Method::GET, path, Some(FULL_TOKEN))).await
    }

    /// POST `body` as JSON to `path` with the full token: status and JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        send_json(
            self.request(reqwest::Method::POST, path, Some(FULL_TOKEN))
                .json(body),
        )
        .await
    }

    /// Opens `GET /api/v1/events<query>` with the full token, resuming
    /// after `last_event_id` if given.
    pub async fn events(&self, query: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = self.request(
            reqwest::Method::GET,
            &format!("/api/v1/events{query}"),
            Some(FULL_TOKEN),
        );
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("GET /api/v1/events");
        assert_eq!(response.status().as_u16(), 200, "events stream refused");
        SseReader {
            response,
            buffer: String::new(),
        }
    }
}

/// The FlinksCode of [`MixedLogins::failed`].
pub const FAILED_CODE: &str = "INVALID_LOGIN";

/// LoginIds of a batch that ends mixed (not enqueued yet).
#[derive(Debug, Clone)]
pub struct MixedLogins {
    /// These succeed.
    pub ok: Vec<String>,
    /// This one fails for good: the simulator answers its authorize 401
    /// [`FAILED_CODE`].
    pub failed: String,
}

impl MixedLogins {
    /// Every loginId, the failed one last.
    pub fn all(&self) -> Vec<String> {
        let mut all = self.ok.clone();
        all.push(self.failed.clone());
        all
    }
}

/// The world of a console or API test about a failed login: a scenario
/// whose simulator and workers use a 1 s poll timeout (a batch ends in
/// seconds), `flinkq serve` on it with both tokens, and `ok` logins that
/// succeed plus one that fails.
pub async fn serve_mixed(ok: usize) -> (Scenario, ServeProcess, MixedLogins) {
    let world =
        Scenario::with_poll_timeout(Duration::from_millis(200), Duration::from_secs(1)).await;
    let serve = ServeProcess::start(&world, &[]).await;
    let logins = MixedLogins {
        ok: world
            .logins(ok, &Script::default())
            .iter()
            .map(ToString::to_string)
            .collect(),
        failed: world.logins(1, &Script::invalid())[0].to_string(),
    };
    (world, serve, logins)
}

/// Sends `request`: its status and JSON body (`null` if it is not JSON).
pub async fn send_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:`.
    pub id: Option<String>,
    /// `event:`.
    pub event: Option<String>,
    /// `data:` (lines joined by newlines).
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads events off an open `text/event-stream` response.
#[derive(Debug)]
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// The next event (keep-alive comments skipped); panics after `timeout`
    /// or if the stream ends.
    pub async fn next(&mut self, timeout: Duration) -> SseEvent {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim_start().to_owned());
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event.event = Some(value.trim_start().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if data.is_empty() && event.event.is_none() {
                    continue; // a comment (keep-alive)
                }
                event.data = data.join("\n");
                return event;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within {timeout:?}");
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {timeout:?}"))
                .expect("read the event stream")
                .expect("the event stream ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until one of type `event` for which `pick` holds;
    /// returns every event read, that one last.
    pub async fn until(
        &mut self,
        event: &str,
        timeout: Duration,
        pick: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<SseEvent> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = self.next(left.max(Duration::from_millis(1))).await;
            let done = next.event.as_deref() == Some(event) && pick(&next.json());
            seen.push(next);
            if done {
                return seen;
            }
        }
    }
}

/// Waits until `flinkq serve`'s batch `batch` reports every job finished.
pub async fn wait_batch_finished(
    serve: &ServeProcess,
    batch: &str,
    timeout: Duration,
) -> serde_json::Value {
    wait_for(&format!("batch {batch} to finish"), timeout, async || {
        let (status, body) = serve.get_json(&format!("/api/v1/batches/{batch}")).await;
        let counts = &body["counts"];
        let open = ["queued", "authorizing", "polling"]
            .iter()
            .map(|s| counts[s].as_u64().unwrap_or(1))
            .sum::<u64>();
        (status == 200 && open == 0).then_some(body)
    })
    .await
}

/// The `schemathesis` command: `FLINKQ_SCHEMATHESIS`, else the virtualenv
/// `scripts/test` installs it into (`~/.cache/flinkq/schemathesis`), else
/// the one on PATH.
pub fn schemathesis() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("FLINKQ_SCHEMATHESIS") {
        return path.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cache"))
        });
    if let Some(venv) = cache.map(|dir| dir.join("flinkq/schemathesis/bin/schemathesis"))
        && venv.exists()
    {
        return venv;
    }
    "schemathesis".into()
}

/// A browser of the console: a cookie store, redirects not followed (a
/// test sees where each answer sends it).
#[derive(Debug)]
pub struct ConsoleBrowser {
    client: reqwest::Client,
    base: String,
    /// The console's cookies, kept and sent back as a browser does. Kept
    /// here rather than by reqwest's `cookies` feature: a workspace build
    /// unifies features, and that one would put a cookie layer (a URL parse
    /// and a lock per call) into the worker's Flinks client.
    cookies: std::sync::Mutex<cookie_store::CookieStore>,
}

/// One console answer.
#[derive(Debug)]
pub struct ConsolePage {
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: reqwest::header::HeaderMap,
    /// Its body.
    pub body: String,
}

impl ConsolePage {
    /// Where a redirect sends the browser.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// Every hidden field of the page's forms (name, value), in order: a
    /// test posts a page's own form back with them.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        let marker = "<input type=\"hidden\" name=\"";
        self.body
            .match_indices(marker)
            .filter_map(|(at, _)| {
                let rest = &self.body[at + marker.len()..];
                let (name, rest) = rest.split_once('"')?;
                let rest = rest.strip_prefix(" value=\"")?;
                let (value, _) = rest.split_once('"')?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in the page:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("end of the CSRF value");
        self.body[start..start + end].to_owned()
    }
}

impl ConsoleBrowser {
    /// A browser with no session yet.
    pub fn new(serve: &ServeProcess) -> ConsoleBrowser {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        ConsoleBrowser {
            client,
            base: serve.url(""),
            cookies: Default::default(),
        }
    }

    /// A browser signed in with `token` (asserts the sign-in worked).
    pub async fn signed_in(serve: &ServeProcess, token: &str) -> ConsoleBrowser {
        let browser = ConsoleBrowser::new(serve);
        let page = browser.sign_in(token).await;
        assert_eq!(page.status, 303, "sign-in refused: {}", page.body);
        browser
    }

    /// Signs in as a person would: GET the form (its login-CSRF cookie
    /// and field), then POST it with `token`.
    pub async fn sign_in(&self, token: &str) -> ConsolePage {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200, "the sign-in form: {}", form.body);
        self.post("/signin", &[("token", token), ("csrf", &form.csrf())])
            .await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> ConsolePage {
        self.read(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// POST `fields` as a form to `path`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> ConsolePage {
        self.read(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields),
        )
        .await
    }

    /// Answers a dead-letter confirmation page: posts its own form back
    /// (the selection and the filter in its hidden fields) with
    /// `confirm=yes`, as the operator's click does.
    pub async fn confirm(&self, asked: &ConsolePage) -> ConsolePage {
        let fields = asked.hidden_fields();
        let mut form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        form.push(("confirm", "yes"));
        self.post("/dead/action", &form).await
    }

    async fn read(&self, request: reqwest::RequestBuilder) -> ConsolePage {
        use reqwest::header::{COOKIE, HeaderValue, SET_COOKIE};
        let mut request = request.build().expect("console request");
        let url = request.url().clone();
        let cookie = self
            .jar()
            .get_request_values(&url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookie.is_empty() {
            let value = HeaderValue::from_str(&cookie).expect("a Cookie header");
            request.headers_mut().insert(COOKIE, value);
        }
        let response = self.client.execute(request).await.expect("console request");
        let set = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| cookie_store::RawCookie::parse(value.to_owned()).ok());
        self.jar().store_response_cookies(set, &url);
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("console body");
        ConsolePage {
            status,
            headers,
            body,
        }
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, cookie_store::CookieStore> {
        self.cookies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
