//! The Flinks HTTP client: typed bodies, answers classified into outcomes.

mod bodies;
mod client;

pub use client::{FlinksClient, FlinksEndpoints, InvestmentsAnswer};
