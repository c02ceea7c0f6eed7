//! Reading results back: the `results` stream (one entry per finished job)
//! and a login's newest stored result of a product
//! (`result:<loginId>:<product>`).

use std::collections::HashMap;

use redis::{AsyncCommands, Value};

use super::{Store, StoreError, reply};
use crate::{JobId, JobState, LoginId, Product, ResultPlace, StoredResult};

/// One entry of the `results` stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResultEntry {
    /// Stream entry id (`<ms>-<n>`): pass it back to read on after it.
    pub id: String,
    /// The job.
    pub job: JobId,
    /// Its login.
    pub login: String,
    /// Its product (entries written before products existed: the default).
    pub product: Product,
    /// Its batch.
    pub batch: String,
    /// How it finished.
    pub state: JobState,
    /// For a succeeded job: `file` or `redis`.
    pub sink: Option<String>,
    /// For a succeeded job: the file's path, or the Redis key of the payload.
    pub location: Option<String>,
    /// For a job that did not succeed: its last error code.
    pub error: Option<String>,
}

impl Store {
    /// Up to `count` entries of the `results` stream after entry `after`
    /// (`None`: from the start), oldest first.
    pub async fn result_entries(
        &self,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<ResultEntry>, StoreError> {
        const OP: &str = "XRANGE results";
        let entries = self
            .stream_range(&self.keys.results(), after, count, OP)
            .await?;
        entries
            .into_iter()
            .map(|(id, fields)| result_entry(OP, id, &fields))
            .collect()
    }

    /// The login's newest stored result of `product`, if one is kept. A
    /// pointer that does not name `login` and `product` as its owner
    /// (another login's or product's result moved under this key, or one
    /// written before pointers carried them) is refused with
    /// [`StoreError::ForeignResult`]: its data is never returned.
    pub async fn stored_result(
        &self,
        login: &LoginId,
        product: Product,
    ) -> Result<Option<StoredResult>, StoreError> {
        const OP: &str = "HGETALL result";
        let mut conn = self.conn.clone();
        let mut fields: HashMap<String, Vec<u8>> = conn
            .hgetall(self.keys.result(login, product))
            .await
            .map_err(StoreError::command(OP))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let text = |fields: &HashMap<String, Vec<u8>>, name: &str| {
            fields
                .get(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        let bad = |what: &str| StoreError::reply(OP, format!("result of {login}: {what}"));
        let owner = text(&fields, "login");
        let owner_product = text(&fields, "product");
        if owner.as_deref() != Some(login.to_string().as_str())
            || owner_product.as_deref() != Some(product.as_str())
        {
            return Err(StoreError::ForeignResult {
                key: self.keys.result(login, product),
                login: login.to_string(),
                product,
                owner: owner.map(|owner| {
                    format!(
                        "{owner} ({})",
                        owner_product.as_deref().unwrap_or("no product")
                    )
                }),
            });
        }
        let job: JobId = text(&fields, "job")
            .and_then(|j| j.parse().ok())
            .ok_or_else(|| bad("no job id"))?;
        let stored_ms = text(&fields, "stored")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no stored time"))?;
        let sink = text(&fields, "sink").unwrap_or_default();
        let data = fields.remove("data").ok_or_else(|| bad("no data"))?;
        let place = match sink.as_str() {
            "redis" => ResultPlace::Redis(data),
            "file" => ResultPlace::File(String::from_utf8(data).map_err(|_| bad("bad path"))?),
            other => return Err(bad(&format!("unknown sink {other:?}"))),
        };
        Ok(Some(StoredResult {
            job,
            stored_ms,
            place,
        }))
    }

    /// `XRANGE key (after + COUNT count` as (id, fields) pairs.
    pub(crate) async fn stream_range(
        &self,
        key: &str,
        after: Option<&str>,
        count: usize,
        op: &'static str,
    ) -> Result<Vec<(String, HashMap<String, String>)>, StoreError> {
        let mut conn = self.conn.clone();
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(op))?;
        Ok(reply::stream_entries(&reply))
    }
}

/// One `results` stream entry as a [`ResultEntry`].
pub(crate) fn result_entry(
    op: &'static str,
    id: String,
    fields: &HashMap<String, String>,
) -> Result<ResultEntry, StoreError> {
    let get = |name: &str| fields.get(name).cloned();
    let job: JobId = get("job")
        .and_then(|j| j.parse().ok())
        .ok_or_else(|| StoreError::reply(op, format!("entry {id}: no job id")))?;
    let state = get("state")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::reply(op, format!("entry {id}: bad state")))?;
    let product = match get("product") {
        None => Product::DEFAULT,
        Some(name) => name
            .parse()
            .map_err(|e| StoreError::reply(op, format!("entry {id}: {e} (upgrade this flinkq)")))?,
    };
    Ok(ResultEntry {
        job,
        login: get("login").unwrap_or_default(),
        product,
        batch: get("batch").unwrap_or_default(),
        state,
        sink: get("sink"),
        location: get("location"),
        error: get("error"),
        id,
    })
}
