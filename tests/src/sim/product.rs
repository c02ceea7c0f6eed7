//! The Flinks data products the simulator serves, and how the provider wants
//! each one polled (see `shared/flinks-products.md` in the project notes).

use serde::{Deserialize, Serialize};

/// A Flinks data product: what a job fetches after Authorize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Product {
    /// `POST {wealth}/Investments` (retired by Flinks in 2026, still served).
    Investments,
    /// `POST /BankingServices/GetAccountsDetail`, then `GET …Async/{RequestId}`.
    AccountsDetail,
    /// `POST /BankingServices/GetAccountsSummary`, then `GET …Async/{RequestId}`.
    AccountsSummary,
    /// `POST /BankingServices/GetStatements`, repeated while pending.
    Statements,
    /// `GET /insight/login/{LoginId}/attributes/{RequestId}/GetAllAttributes`,
    /// only once GetAccountsDetail answered 200 in the same session.
    Attributes,
}

/// How the provider wants a pending (202) product polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStrategy {
    /// Repeat the first call as it was (Investments, GetStatements).
    RepeatFirstCall,
    /// `GET …Async/{RequestId}` with no body after the first call's 202.
    GetAsync,
}

/// Which request of a product a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// The product's own request (repeated by `RepeatFirstCall` products).
    First,
    /// `GET …Async/{RequestId}` (only `GetAsync` products have it).
    Async,
}

impl Product {
    /// Every product.
    pub const ALL: [Product; 5] = [
        Product::Investments,
        Product::AccountsDetail,
        Product::AccountsSummary,
        Product::Statements,
        Product::Attributes,
    ];

    /// The product's name in configuration and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Investments => "investments",
            Product::AccountsDetail => "accounts-detail",
            Product::AccountsSummary => "accounts-summary",
            Product::Statements => "statements",
            Product::Attributes => "attributes",
        }
    }

    /// How the provider wants it polled while it answers 202.
    pub fn poll_strategy(self) -> PollStrategy {
        match self {
            Product::AccountsDetail | Product::AccountsSummary => PollStrategy::GetAsync,
            Product::Investments | Product::Statements | Product::Attributes => {
                PollStrategy::RepeatFirstCall
            }
        }
    }

    /// The first call's path: below the wealth base for Investments, below
    /// the banking base otherwise (both end at the customer id).
    pub fn first_call_path(self, login: &str, request_id: &str) -> String {
        match self {
            Product::Investments => "/Investments".to_owned(),
            Product::AccountsDetail => "/BankingServices/GetAccountsDetail".to_owned(),
            Product::AccountsSummary => "/BankingServices/GetAccountsSummary".to_owned(),
            Product::Statements => "/BankingServices/GetStatements".to_owned(),
            Product::Attributes => {
                format!("/insight/login/{login}/attributes/{request_id}/GetAllAttributes")
            }
        }
    }

    /// The `GET …Async/{RequestId}` path below the banking base, for
    /// `GetAsync` products.
    pub fn async_path(self, request_id: &str) -> Option<String> {
        match self {
            Product::AccountsDetail => Some(format!(
                "/BankingServices/GetAccountsDetailAsync/{request_id}"
            )),
            Product::AccountsSummary => Some(format!(
                "/BankingServices/GetAccountsSummaryAsync/{request_id}"
            )),
            Product::Investments | Product::Statements | Product::Attributes => None,
        }
    }

    /// The `Links` entry of a 202: where the provider says to ask next.
    pub(crate) fn pending_link(self) -> (&'static str, &'static str) {
        match self {
            Product::Investments => ("Investments", "/Investments"),
            Product::AccountsDetail => ("GetAccountsDetailAsync", "/GetAccountsDetailAsync"),
            Product::AccountsSummary => ("GetAccountsSummaryAsync", "/GetAccountsSummaryAsync"),
            Product::Statements => ("GetStatements", "/GetStatements"),
            Product::Attributes => ("GetAllAttributes", "/GetAllAttributes"),
        }
    }
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
