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

/// Fields a script returned as values alone, in the order of a list of
/// names (a claim's [`super::claim::CLAIMED_FIELDS`]), packed by Redis'
/// `cmsgpack.pack` into one string: a MessagePack array of exactly as many
/// values, each text or `false` (a field the hash lacks: a Lua table with a
/// hole would pack as a map). One string per job instead of one RESP value
/// per field: Redis converts one value out of Lua instead of dozens, and the
/// worker allocates nothing per field, each value borrowed where it lies in
/// the reply. A value that is not UTF-8 text reads as unset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packed<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<&'a str>; N],
}

impl<'a, const N: usize> Packed<'a, N> {
    /// Reads `packed`, one value per name in `names`. Anything else (not an
    /// array, another count, a value neither text nor false, bytes missing
    /// or left over) is an error saying what was found.
    pub(crate) fn unpack(
        names: &'static [&'static str; N],
        packed: &'a [u8],
    ) -> Result<Self, String> {
        use rmp::Marker;
        let mut rest = packed;
        let Some(&first) = rest.first() else {
            return Err("an empty string, not packed values".into());
        };
        let count = rmp::decode::read_array_len(&mut rest).map_err(|_| {
            format!(
                "{} where an array of {N} values was expected",
                kind(Marker::from_u8(first))
            )
        })?;
        if count as usize != N {
            return Err(format!("{count} values where {N} were expected"));
        }
        let mut values = [None; N];
        for (at, value) in values.iter_mut().enumerate() {
            let name = names[at];
            let Some(&byte) = rest.first() else {
                return Err(format!("cut short before value {} ({name})", at + 1));
            };
            match Marker::from_u8(byte) {
                Marker::False | Marker::Null => rest = &rest[1..],
                Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                    let len = rmp::decode::read_str_len(&mut rest).map_err(|_| {
                        format!("cut short in the length of value {} ({name})", at + 1)
                    })? as usize;
                    let Some((text, tail)) = rest.split_at_checked(len) else {
                        return Err(format!("cut short in value {} ({name})", at + 1));
                    };
                    *value = std::str::from_utf8(text).ok();
                    rest = tail;
                }
                marker => {
                    return Err(format!(
                        "value {} ({name}) is {}, not text or false",
                        at + 1,
                        kind(marker)
                    ));
                }
            }
        }
        if !rest.is_empty() {
            return Err(format!("{} byte(s) left after the last value", rest.len()));
        }
        Ok(Packed { names, values })
    }
}

/// What a MessagePack value starting with `marker` is, in words.
fn kind(marker: rmp::Marker) -> &'static str {
    use rmp::Marker;
    match marker {
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "an integer",
        Marker::F32 | Marker::F64 => "a float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a string",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map (a table with holes?)",
        Marker::Null => "nil",
        Marker::True | Marker::False => "a boolean",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary",
        _ => "an extension or reserved value",
    }
}

impl<const N: usize> JobFields for Packed<'_, N> {
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

    use rmp::encode;

    const NAMES: [&str; 5] = ["state", "due", "bad", "gone", "long"];

    /// `values` packed as `cmsgpack.pack` packs a claimed job's table:
    /// text, or false for a field the hash lacks.
    fn pack(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut packed = Vec::new();
        encode::write_array_len(&mut packed, values.len() as u32).expect("len");
        for value in values {
            match value {
                Some(bytes) => {
                    encode::write_str_len(&mut packed, bytes.len() as u32).expect("str len");
                    packed.extend_from_slice(bytes);
                }
                None => encode::write_bool(&mut packed, false).expect("false"),
            }
        }
        packed
    }

    #[test]
    fn packed_fields_read_by_their_names_place_borrowed_from_the_reply() {
        let long = "x".repeat(70_000);
        let packed = pack(&[
            Some(b"queued"),
            Some(b"1"),
            Some(&[0xff]),
            None,
            Some(long.as_bytes()),
        ]);
        let read = Packed::unpack(&NAMES, &packed).expect("unpack");
        assert_eq!(read.field("state"), Some("queued"));
        assert_eq!(read.field("due"), Some("1"));
        assert_eq!(read.field("bad"), None, "not UTF-8");
        assert_eq!(read.field("gone"), None, "absent from the hash");
        assert_eq!(read.field("long"), Some(long.as_str()), "a str32");
        assert_eq!(read.field("missing"), None, "not a claimed field");
        let borrowed = read.field("state").expect("state").as_ptr();
        assert!(packed.as_ptr_range().contains(&borrowed), "copied");
    }

    #[test]
    fn packed_values_of_the_wrong_shape_are_an_error_saying_what_was_found() {
        let four = pack(&[Some(b"a"), None, None, None]);
        let error = Packed::unpack(&NAMES, &four).expect_err("four values");
        assert!(error.contains("4 values where 5"), "{error}");

        let mut map = Vec::new();
        encode::write_map_len(&mut map, 5).expect("map");
        let error = Packed::unpack(&NAMES, &map).expect_err("a map");
        assert!(error.contains("a map"), "{error}");

        let error = Packed::unpack(&NAMES, b"").expect_err("empty");
        assert!(error.contains("empty"), "{error}");

        let mut number = Vec::new();
        encode::write_array_len(&mut number, 5).expect("len");
        encode::write_str(&mut number, "queued").expect("str");
        encode::write_uint(&mut number, 17).expect("int");
        let error = Packed::unpack(&NAMES, &number).expect_err("a number");
        assert!(error.contains("value 2 (due) is an integer"), "{error}");

        let whole = pack(&[Some(b"a"), Some(b"bcd"), None, None, Some(b"e")]);
        for cut in 1..whole.len() {
            let error = Packed::unpack(&NAMES, &whole[..cut]).expect_err("cut short");
            assert!(error.contains("cut short"), "{cut}: {error}");
        }
        let mut longer = whole.clone();
        longer.push(0xc2);
        let error = Packed::unpack(&NAMES, &longer).expect_err("left over");
        assert!(error.contains("1 byte(s) left after"), "{error}");
        Packed::unpack(&NAMES, &whole).expect("the whole of it reads");
    }
}
