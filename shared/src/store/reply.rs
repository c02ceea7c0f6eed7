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
    // read in place: a claim reads one per claimed job
    let text = match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text.as_str()),
        _ => None,
    };
    parse_job_id(
        op,
        text.ok_or_else(|| StoreError::reply(op, "job id is not text"))?,
    )
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

/// A job hash as `HGETALL` answered it (RESP2's flat `field, value` list or
/// RESP3's map), kept for the fields of one list of names (a claim's
/// [`super::claim::CLAIMED_FIELDS`]) and borrowed where each value lies in
/// the reply: a claim reads one per claimed job and allocates nothing per
/// field. Fields not in the list are skipped; a value that is not UTF-8
/// text reads as unset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashFields<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<&'a str>; N],
}

impl<'a, const N: usize> HashFields<'a, N> {
    /// Reads `reply`, an `HGETALL` answer (empty for a hash that does not
    /// exist). Anything else (not a list or a map, a name without its
    /// value, a name or value that is not a string) is an error saying what
    /// was found.
    pub(crate) fn read(
        names: &'static [&'static str; N],
        reply: &'a Value,
    ) -> Result<Self, String> {
        let mut read = HashFields {
            names,
            values: [None; N],
        };
        match reply {
            Value::Array(items) => {
                if !items.len().is_multiple_of(2) {
                    return Err(format!("{} items, not field and value pairs", items.len()));
                }
                for pair in items.chunks_exact(2) {
                    read.put(&pair[0], &pair[1])?;
                }
            }
            Value::Map(pairs) => {
                for (name, value) in pairs {
                    read.put(name, value)?;
                }
            }
            other => return Err(format!("{}, not a hash's fields", value_kind(other))),
        }
        Ok(read)
    }

    fn put(&mut self, name: &'a Value, value: &'a Value) -> Result<(), String> {
        let (Value::BulkString(name), Value::BulkString(value)) = (name, value) else {
            return Err(format!(
                "a field of {} and a value of {}, not two strings",
                value_kind(name),
                value_kind(value)
            ));
        };
        if let Some(at) = self.names.iter().position(|known| known.as_bytes() == name) {
            self.values[at] = std::str::from_utf8(value).ok();
        }
        Ok(())
    }

    /// Sets field `name` of the list to `value`, whatever the hash held:
    /// what the claim itself decided (see `claim.rs`). A name not in the
    /// list is a bug of the caller.
    pub(crate) fn set(&mut self, name: &str, value: Option<&'a str>) {
        let at = self
            .names
            .iter()
            .position(|known| *known == name)
            .unwrap_or_else(|| panic!("{name} is not one of the fields read"));
        self.values[at] = value;
    }
}

/// What a reply value is, in words, for an error.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) => "a list",
        Value::Map(_) => "a map",
        Value::Okay => "OK",
        Value::ServerError(_) => "an error",
        _ => "another kind of value",
    }
}

impl<const N: usize> JobFields for HashFields<'_, N> {
    fn field(&self, name: &str) -> Option<&str> {
        let at = self.names.iter().position(|known| *known == name)?;
        self.values[at]
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

    const NAMES: [&str; 5] = ["state", "due", "bad", "gone", "long"];

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    #[test]
    fn hash_fields_read_by_their_names_place_borrowed_from_the_reply() {
        let long = "x".repeat(70_000);
        let flat = Value::Array(vec![
            bulk(b"state"),
            bulk(b"queued"),
            bulk(b"other"),
            bulk(b"not read"),
            bulk(b"due"),
            bulk(b"1"),
            bulk(b"bad"),
            bulk(&[0xff]),
            bulk(b"long"),
            bulk(long.as_bytes()),
        ]);
        let read = HashFields::read(&NAMES, &flat).expect("read");
        assert_eq!(read.field("state"), Some("queued"));
        assert_eq!(read.field("due"), Some("1"));
        assert_eq!(read.field("bad"), None, "not UTF-8");
        assert_eq!(read.field("gone"), None, "absent from the hash");
        assert_eq!(read.field("long"), Some(long.as_str()));
        assert_eq!(read.field("other"), None, "not a field of the list");
        let Value::Array(items) = &flat else {
            unreachable!()
        };
        let Value::BulkString(stored) = &items[1] else {
            unreachable!()
        };
        assert_eq!(
            read.field("state").expect("state").as_ptr(),
            stored.as_ptr(),
            "copied"
        );

        // RESP3 answers a map
        let map = Value::Map(vec![(bulk(b"state"), bulk(b"polling"))]);
        let mut read = HashFields::read(&NAMES, &map).expect("map");
        assert_eq!(read.field("state"), Some("polling"));
        read.set("gone", Some("set by the claim"));
        assert_eq!(read.field("gone"), Some("set by the claim"));

        let empty = Value::Array(Vec::new());
        let missing = HashFields::read(&NAMES, &empty).expect("no hash");
        assert!(NAMES.iter().all(|name| missing.field(name).is_none()));
    }

    #[test]
    fn a_hash_reply_of_the_wrong_shape_is_an_error_saying_what_was_found() {
        let odd = Value::Array(vec![bulk(b"state"), bulk(b"queued"), bulk(b"due")]);
        let error = HashFields::read(&NAMES, &odd).expect_err("odd");
        assert!(
            error.contains("3 items, not field and value pairs"),
            "{error}"
        );

        let error = HashFields::read(&NAMES, &Value::Int(3)).expect_err("a number");
        assert!(error.contains("an integer, not a hash"), "{error}");

        let nested = Value::Array(vec![bulk(b"state"), Value::Array(Vec::new())]);
        let error = HashFields::read(&NAMES, &nested).expect_err("nested");
        assert!(error.contains("a value of a list"), "{error}");
    }
}
