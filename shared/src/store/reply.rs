//! Reading script answers (`redis::Value`) into flinkq types.

use std::collections::HashMap;

use redis::Value;

use super::{StoreError, fields};
use crate::{ClaimToken, JobId, JobSnapshot, JobState, LoginId, Product, StepError};

pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => text(other)
            .and_then(|s| s.parse::<f64>().ok())
            .map(|f| f as i64),
    }
}

pub(crate) fn array(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// A job id a script returned.
pub(crate) fn job_id(op: &'static str, value: &Value) -> Result<JobId, StoreError> {
    let text = text(value).ok_or_else(|| StoreError::reply(op, "job id is not text"))?;
    parse_job_id(op, &text)
}

/// A job id read from an index or a pointer.
pub(crate) fn parse_job_id(op: &'static str, text: &str) -> Result<JobId, StoreError> {
    text.parse()
        .map_err(|e| StoreError::reply(op, format!("{e} (written by an older flinkq?)")))
}

/// A flat `field, value, field, value` list (HGETALL in a script) as a map.
pub(crate) fn field_map(items: &[Value]) -> HashMap<String, String> {
    items
        .chunks_exact(2)
        .filter_map(|pair| Some((text(&pair[0])?, text(&pair[1])?)))
        .collect()
}

/// Where a job's fields are read from: a map (`HGETALL` from Rust), or a
/// script's flat list read in place ([`FlatFields`]).
pub(crate) trait JobFields {
    /// The value of field `name`, if set and text.
    fn field(&self, name: &str) -> Option<&str>;
}

impl JobFields for HashMap<String, String> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Fields a script returned as values alone, in the order of a list of
/// names (a claim's [`super::claim::CLAIMED_FIELDS`]), read where they lie:
/// no map and no copies. A claim reads every claimed job this way, on every
/// step's path; a map of owned strings cost each job some 60 allocations.
/// A nil value (a field the hash lacks) or one that is not UTF-8 text reads
/// as unset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Positional<'a> {
    pub(crate) names: &'static [&'static str],
    pub(crate) values: &'a [Value],
}

impl JobFields for Positional<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        let at = self.names.iter().position(|known| *known == name)?;
        match self.values.get(at)? {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
            Value::SimpleString(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

/// A stream reply `[[id, [field, value, ...]], ...]` (XRANGE, and the entry
/// lists of XREADGROUP and XAUTOCLAIM) as (id, fields) pairs; entries whose
/// fields are nil (deleted) are skipped.
pub(crate) fn stream_entries(value: &Value) -> Vec<(String, HashMap<String, String>)> {
    array(value)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            let [id, fields] = array(entry)? else {
                return None;
            };
            Some((text(id)?, field_map(array(fields)?)))
        })
        .collect()
}

/// A job hash as a snapshot. Empty strings mean "not set".
pub(crate) fn snapshot(
    op: &'static str,
    id: JobId,
    fields: &impl JobFields,
) -> Result<JobSnapshot, StoreError> {
    let get = |name: &str| fields.field(name).filter(|v| !v.is_empty());
    let num = |name: &str| -> Result<Option<u64>, StoreError> {
        get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    StoreError::reply(op, format!("job {id}: field {name}={v:?} is not a number"))
                })
            })
            .transpose()
    };
    let count = |name: &str| -> Result<u32, StoreError> {
        Ok(num(name)?.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    };
    let login = get(fields::LOGIN)
        .ok_or_else(|| StoreError::reply(op, format!("job {id} has no login")))
        .and_then(|v| {
            LoginId::parse(v).map_err(|e| StoreError::reply(op, format!("job {id}: {e}")))
        })?;
    let state = get(fields::STATE)
        .unwrap_or_default()
        .parse::<JobState>()
        .map_err(|e| StoreError::reply(op, format!("job {id}: {e}")))?;
    let product = match get(fields::PRODUCT) {
        None => Product::DEFAULT,
        Some(name) => name.parse::<Product>().map_err(|e| {
            StoreError::reply(
                op,
                format!(
                    "job {id}: {e} (stored by a flinkq that serves more products: upgrade this one)"
                ),
            )
        })?,
    };
    let error = get(fields::ERR_CODE).map(|code| StepError {
        code: code.to_owned(),
        http_status: get(fields::ERR_HTTP).and_then(|v| v.parse().ok()),
        message: get(fields::ERR_MSG).unwrap_or_default().to_owned(),
    });
    Ok(JobSnapshot {
        id,
        login,
        product,
        batch: get(fields::BATCH).unwrap_or_default().to_owned(),
        state,
        token: get(fields::TOKEN).map(ClaimToken::from_stored),
        request_id: get(fields::REQUEST_ID).map(str::to_owned),
        deadline_ms: num(fields::DEADLINE)?,
        stage: num(fields::STAGE)?.map_or(0, |n| u8::try_from(n).unwrap_or(u8::MAX)),
        stage_accepted: get(fields::STAGE_ACCEPTED) == Some("1"),
        attempts: count(fields::ATTEMPTS)?,
        polls: count(fields::POLLS)?,
        auths: count(fields::AUTHS)?,
        sessions: count(fields::SESSIONS)?,
        claims: count(fields::CLAIMS)?,
        retries: count(fields::RETRIES)?,
        created_ms: num(fields::CREATED)?.unwrap_or(0),
        started_ms: num(fields::STARTED)?,
        updated_ms: num(fields::UPDATED)?.or(num(fields::CREATED)?).unwrap_or(0),
        finished_ms: num(fields::FINISHED)?,
        error,
        last: get(fields::LAST).map(str::to_owned),
        due_ms: get(fields::DUE)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|f| f as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    #[test]
    fn positional_fields_read_by_their_names_place() {
        let names: &'static [&'static str] = &["state", "due", "bad", "login", "gone"];
        let values = [
            bulk(b"queued"),
            bulk(b"1"),
            bulk(&[0xff]),
            Value::SimpleString("abc".into()),
            Value::Nil,
        ];
        let read = Positional {
            names,
            values: &values,
        };
        assert_eq!(read.field("state"), Some("queued"));
        assert_eq!(read.field("due"), Some("1"));
        assert_eq!(read.field("bad"), None, "not UTF-8");
        assert_eq!(read.field("login"), Some("abc"));
        assert_eq!(read.field("gone"), None, "absent from the hash");
        assert_eq!(read.field("missing"), None, "not a claimed field");
    }
}
