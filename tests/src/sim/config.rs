//! What the simulator does: its configuration and per-login scripts.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::product::Product;

/// How one login behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Script {
    /// 202 `OPERATION_PENDING` answers before the 200, for each product
    /// (counted per login and product, across sessions: a re-authorized
    /// login continues where it was).
    pub pending: u32,
    /// Authorize answers 401 `INVALID_LOGIN`.
    pub invalid: bool,
    /// No product ever answers 200.
    pub always_pending: bool,
    /// After this many calls of one product on one session, that session
    /// answers `SESSION_EXPIRED` (forces a re-authorize).
    pub expire_session_after_polls: Option<u32>,
    /// Faults injected at given calls.
    pub faults: Vec<ScriptedFault>,
}

impl Script {
    /// `pending` 202 answers, then the 200.
    pub fn pending(pending: u32) -> Self {
        Script {
            pending,
            ..Script::default()
        }
    }

    /// Authorize answers 401 `INVALID_LOGIN`.
    pub fn invalid() -> Self {
        Script {
            invalid: true,
            ..Script::default()
        }
    }

    /// No product ever answers 200.
    pub fn always_pending() -> Self {
        Script {
            always_pending: true,
            ..Script::default()
        }
    }
}

/// Which endpoint a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// `POST /Authorize`.
    Authorize,
    /// `POST /Investments`.
    Investments,
    /// GetAccountsDetail and its `…Async` polls.
    AccountsDetail,
    /// GetAccountsSummary and its `…Async` polls.
    AccountsSummary,
    /// GetStatements.
    Statements,
    /// GetAllAttributes.
    Attributes,
}

impl From<Product> for Endpoint {
    fn from(product: Product) -> Self {
        match product {
            Product::Investments => Endpoint::Investments,
            Product::AccountsDetail => Endpoint::AccountsDetail,
            Product::AccountsSummary => Endpoint::AccountsSummary,
            Product::Statements => Endpoint::Statements,
            Product::Attributes => Endpoint::Attributes,
        }
    }
}

/// A fault on one call: the `call`-th (1-based) call of this login to
/// `endpoint` (for a product: its first calls and `…Async` polls together) — or, with `call: 0` ([`ScriptedFault::EVERY_CALL`]), on every
/// call of it: a provider stuck in one answer (Authorize answering 202
/// forever, every poll `SESSION_EXPIRED`). A fault for one call number wins
/// over an every-call fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedFault {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Which call of this login to that endpoint (1-based); 0 for every call.
    pub call: u32,
    /// What happens instead of the normal answer.
    pub fault: Fault,
}

impl ScriptedFault {
    /// The `call` that means every call of the endpoint.
    pub const EVERY_CALL: u32 = 0;

    /// A fault on the `call`-th /Investments call.
    pub fn poll(call: u32, fault: Fault) -> Self {
        ScriptedFault {
            endpoint: Endpoint::Investments,
            call,
            fault,
        }
    }

    /// A fault on the `call`-th call of `product` (first calls and polls).
    pub fn product(product: Product, call: u32, fault: Fault) -> Self {
        ScriptedFault {
            endpoint: product.into(),
            call,
            fault,
        }
    }

    /// A fault on the `call`-th Authorize call.
    pub fn authorize(call: u32, fault: Fault) -> Self {
        ScriptedFault {
            endpoint: Endpoint::Authorize,
            call,
            fault,
        }
    }
}

/// What a faulty answer looks like. None of them changes the login's
/// progress (pending count, success), except `ExpireSession`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Fault {
    /// This HTTP status, with this FlinksCode if any (5xx, 401 `RETRY_LATER`,
    /// 202 `OPERATION_DISPATCHED`, 203 security challenge, 400 `INVALID_REQUEST`…).
    Answer {
        /// HTTP status.
        status: u16,
        /// FlinksCode.
        code: Option<String>,
    },
    /// 429 `TOO_MANY_REQUESTS` with a `Retry-After` header.
    RateLimited {
        /// Retry-After, in seconds.
        retry_after_secs: u64,
    },
    /// The connection is cut in the middle of the answer.
    Reset,
    /// A 503, but only after this long (meant to pass the client's timeout).
    Slow {
        /// Delay before answering, ms.
        millis: u64,
    },
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
    /// The session expires now: `SESSION_EXPIRED` (product calls only).
    ExpireSession,
    // Hostile answers: what a compromised or broken provider could send.
    // Answered by `sim::hostile`.
    /// A redirect (`status` 3xx) to `location`, e.g. another origin that
    /// must never see the auth key.
    Redirect {
        /// HTTP status (301, 302, 307, 308...).
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// A body of `megabytes` MB, streamed from one static chunk (the
    /// simulator allocates none of it), without a Content-Length. With
    /// status 200 it is a JSON payload (valid if read whole: an
    /// `Investments` array padded with whitespace); otherwise an HTML page.
    HugeBody {
        /// HTTP status.
        status: u16,
        /// Size of the body, in MB (10^6 bytes).
        megabytes: u32,
    },
    /// A 200 whose headers arrive, then nothing, ever: only the client's
    /// timeout ends it.
    StalledBody,
    /// An error envelope whose fields have unexpected types: `Message` is an
    /// object, `RequestId` a number; `FlinksCode` is a string.
    MistypedEnvelope {
        /// HTTP status.
        status: u16,
        /// FlinksCode.
        code: String,
    },
    /// A 200 payload of the right shape with invalid UTF-8 inside a JSON
    /// string.
    InvalidUtf8,
    /// An answer with `Retry-After` as an HTTP-date `after_secs` from now,
    /// and a `Date` header (both from the simulator's clock).
    RetryAfterDate {
        /// HTTP status.
        status: u16,
        /// FlinksCode, if any.
        code: Option<String>,
        /// Seconds from the answer's `Date` to the Retry-After date.
        after_secs: u64,
    },
}

impl Fault {
    /// A plain status with an optional code.
    pub fn answer(status: u16, code: Option<&str>) -> Self {
        Fault::Answer {
            status,
            code: code.map(str::to_owned),
        }
    }
}

/// The script of logins that have none of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultScript {
    /// The same script for every login.
    Fixed(Script),
    /// Derived from the loginId, deterministically: 0-3 pending answers and
    /// about 3% invalid logins, so random demo logins give mixed behaviour.
    FromLoginId,
}

/// Simulator configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (default 127.0.0.1, a free port).
    pub bind: SocketAddr,
    /// When set, requests without this `flinks-auth-key` get 401 `UNAUTHORIZED`.
    pub auth_key: Option<String>,
    /// Absolute session lifetime (Flinks: about 30 minutes).
    pub session_ttl: Duration,
    /// Two calls of one product in one session closer than this are a violation.
    pub min_poll_interval: Duration,
    /// A call later than this after a login's first call of a product is a violation.
    pub poll_timeout: Duration,
    /// Script of logins without one.
    pub default_script: DefaultScript,
    /// Share of calls (0.0-1.0) answered 503 at random, on top of scripts.
    pub random_5xx_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth_key: None,
            session_ttl: Duration::from_secs(30 * 60),
            min_poll_interval: Duration::ZERO,
            poll_timeout: Duration::from_secs(30 * 60),
            default_script: DefaultScript::Fixed(Script::default()),
            random_5xx_rate: 0.0,
        }
    }
}

impl DefaultScript {
    /// The script of `login`.
    pub fn script_for(&self, login: &str) -> Script {
        match self {
            DefaultScript::Fixed(script) => script.clone(),
            DefaultScript::FromLoginId => {
                // FNV-1a: stable across runs and platforms.
                let hash = login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                Script {
                    pending: (hash % 4) as u32,
                    invalid: (hash >> 8) % 33 == 0,
                    ..Script::default()
                }
            }
        }
    }
}
