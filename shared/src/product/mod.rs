//! Flinks data products as data.
//!
//! A product is a [`ProductSpec`] value in a file of its own: which instance
//! its Authorize goes to, and its data stages — each one call (method, path,
//! body), what to call while the provider answers 202, and the top-level key
//! a 200 payload must carry. The state machine knows stages, never
//! endpoints; the worker's Flinks client turns a stage into HTTP; the store
//! keys jobs by product name. Adding a product is one new file here and one
//! line in [`PRODUCTS`] (see CONTRIBUTING.md).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

mod accounts_detail;
mod accounts_summary;
mod attributes;
mod investments;
mod statements;

/// Every product, the default first. The one table: names, CLI values,
/// metric labels and the store's per-product keys all come from it.
pub const PRODUCTS: &[Product] = &[
    Product(&investments::SPEC),
    Product(&accounts_detail::SPEC),
    Product(&accounts_summary::SPEC),
    Product(&statements::SPEC),
    Product(&attributes::SPEC),
];

/// One Flinks data product.
#[derive(Debug)]
pub struct ProductSpec {
    /// Its name in configuration, keys, files and metric labels
    /// (lowercase, `-` between words).
    pub name: &'static str,
    /// One line for `--help` and the docs.
    pub about: &'static str,
    /// The instance its Authorize goes to.
    pub authorize_host: Host,
    /// The data calls after Authorize, in order, all within one session: a
    /// stage runs once the previous one answered 200; the last stage's 200
    /// is the job's payload. A lost session starts again at the first stage.
    pub stages: &'static [Stage],
}

/// One data stage of a product.
#[derive(Debug)]
pub struct Stage {
    /// The stage's first call.
    pub first: Call,
    /// What to call while the stage answers 202.
    pub on_pending: OnPending,
    /// The top-level key a 200 payload of this stage must carry, and its
    /// JSON type.
    pub payload: (&'static str, Shape),
}

/// What to call after a stage's call answered 202.
#[derive(Debug)]
pub enum OnPending {
    /// The same call again (Investments, GetStatements, Attributes).
    Repeat,
    /// Another call, e.g. `GET …Async/{RequestId}` (GetAccountsDetail).
    Then(Call),
}

/// One HTTP call, as data.
#[derive(Debug)]
pub struct Call {
    /// Its name, the `endpoint` label of its metrics (e.g. `GetAccountsDetailAsync`).
    pub name: &'static str,
    /// GET or POST.
    pub method: Method,
    /// The instance it goes to.
    pub host: Host,
    /// Path segments below the instance base (which ends at the customer id).
    pub path: &'static [Part],
    /// Top-level fields of the JSON body (POST only; a GET has no body).
    pub body: &'static [(&'static str, Part)],
}

/// A Flinks instance; its base URL (up to the customer id) is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `https://{instance}-api.private.fin.ag/v3/{customerId}` (FLINKQ_FLINKS_URL).
    Banking,
    /// `https://{instance}-wealth-api.private.fin.ag/v3/{customerId}` (FLINKQ_WEALTH_URL).
    Wealth,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET, no body.
    Get,
    /// POST with a JSON body.
    Post,
}

/// A piece of a path or a body value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Literal text (a path segment, a string value).
    Text(&'static str),
    /// The session's `RequestId` (percent-encoded in a path).
    RequestId,
    /// The job's loginId.
    LoginId,
    /// JSON `true`.
    True,
}

/// The JSON type of a payload's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An array (`Accounts`, `Investments`, …).
    Array,
    /// An object (`Card`).
    Object,
}

impl Shape {
    /// `array` or `object`, for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Array => "array",
            Shape::Object => "object",
        }
    }
}

impl Stage {
    /// The call to make: the first call, or its poll form once the stage
    /// answered 202 (`accepted`).
    pub fn call(&self, accepted: bool) -> &Call {
        match (&self.on_pending, accepted) {
            (OnPending::Then(poll), true) => poll,
            _ => &self.first,
        }
    }
}

/// A product, by its entry in [`PRODUCTS`]: cheap to copy, compared by name.
#[derive(Clone, Copy)]
pub struct Product(&'static ProductSpec);

impl Product {
    /// The default product (`investments`, the one flinkq was built for);
    /// also the product of a job stored before products existed.
    pub const DEFAULT: Product = PRODUCTS[0];

    /// Every product, in table order.
    pub fn all() -> impl Iterator<Item = Product> {
        PRODUCTS.iter().copied()
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// Its definition.
    pub fn spec(self) -> &'static ProductSpec {
        self.0
    }

    /// Its data stages.
    pub fn stages(self) -> &'static [Stage] {
        self.0.stages
    }

    /// Stage `index`, if the product has one there.
    pub fn stage(self, index: u8) -> Option<&'static Stage> {
        self.0.stages.get(usize::from(index))
    }

    /// True when stage `index` is the product's last: its 200 is the payload.
    pub fn is_last_stage(self, index: u8) -> bool {
        usize::from(index) + 1 >= self.0.stages.len()
    }

    /// The names of every product, for error messages and `--help`.
    pub fn names() -> String {
        PRODUCTS
            .iter()
            .map(|product| product.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for Product {
    fn default() -> Self {
        Product::DEFAULT
    }
}

impl PartialEq for Product {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Product {}

impl std::hash::Hash for Product {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl fmt::Debug for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Product({})", self.0.name)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Serialize for Product {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
    }
}

/// `--product` lists every product with its `about` line, and refuses an
/// unknown one naming the known ones.
impl clap::ValueEnum for Product {
    fn value_variants<'a>() -> &'a [Self] {
        PRODUCTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.name).help(self.0.about))
    }
}

/// A product name flinkq does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown product {name:?}: expected one of {known}")]
pub struct UnknownProduct {
    /// What was given (at most 64 characters of it).
    pub name: String,
    /// Every product name.
    pub known: String,
}

impl FromStr for Product {
    type Err = UnknownProduct;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Product::all()
            .find(|product| product.as_str() == wanted)
            .ok_or_else(|| UnknownProduct {
                name: wanted.chars().take(64).collect(),
                known: Product::names(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_is_well_formed() {
        let mut names = std::collections::HashSet::new();
        for product in Product::all() {
            let name = product.as_str();
            assert!(names.insert(name), "{name} listed twice");
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{name}: a product name is lowercase words joined by `-` (it names keys, files and labels)"
            );
            assert!(!product.stages().is_empty(), "{name} has no stage");
            assert!(product.stages().len() <= usize::from(u8::MAX));
            for stage in product.stages() {
                for call in [
                    Some(&stage.first),
                    match &stage.on_pending {
                        OnPending::Then(call) => Some(call),
                        OnPending::Repeat => None,
                    },
                ]
                .into_iter()
                .flatten()
                {
                    assert!(
                        call.method == Method::Post || call.body.is_empty(),
                        "{name}: {} is a GET with a body",
                        call.name
                    );
                    assert!(!call.path.is_empty(), "{name}: {} has no path", call.name);
                }
            }
            assert_eq!(name.parse::<Product>(), Ok(product));
        }
        assert_eq!(Product::default().as_str(), "investments");
    }

    #[test]
    fn an_unknown_product_is_refused_naming_every_known_one() {
        let error = "checking".parse::<Product>().expect_err("unknown");
        let text = error.to_string();
        assert!(text.contains("\"checking\""), "{text}");
        for product in Product::all() {
            assert!(text.contains(product.as_str()), "{text}");
        }
    }

    #[test]
    fn a_get_async_stage_polls_with_its_own_call_once_accepted() {
        let detail: Product = "accounts-detail".parse().expect("known");
        let stage = detail.stage(0).expect("one stage");
        assert_eq!(stage.call(false).name, "GetAccountsDetail");
        assert_eq!(stage.call(true).name, "GetAccountsDetailAsync");
        let statements: Product = "statements".parse().expect("known");
        let stage = statements.stage(0).expect("one stage");
        assert_eq!(stage.call(true).name, stage.call(false).name);
    }
}
