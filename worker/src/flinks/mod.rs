//! The Flinks HTTP client: typed bodies, answers classified into outcomes,
//! bodies read under caps.

mod bodies;
mod client;
mod payload;
mod retry_after;

pub use client::{ERROR_BODY_CAP, FlinksClient, FlinksEndpoints, InvestmentsAnswer};
pub use payload::PayloadTarget;
