//! `Secret` lives in `flinkq_shared::secret` (the HTTP API's tokens use it
//! too); re-exported here so the worker's paths stay as they were.

pub use flinkq_shared::secret::Secret;
