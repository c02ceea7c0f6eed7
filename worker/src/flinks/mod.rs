//! The Flinks HTTP client: URLs built from the product table, typed
//! bodies, answers classified into outcomes, bodies read under caps.

mod bodies;
mod client;
pub mod endpoints;
mod payload;
mod retry_after;
mod transport;

pub use client::{DataAnswer, ERROR_BODY_CAP, FlinksClient, FlinksEndpoints};
pub use endpoints::FlinksUrls;
pub use payload::PayloadTarget;
pub use transport::{TransportBuildError, UnsendableAuthKey, auth_key_header};
