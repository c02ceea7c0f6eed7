//! The typed JSON bodies flinkq sends to and reads from Flinks.
//!
//! Answers are read field by field: one field of an unexpected type (a
//! `Message` that is an object) must not hide the others, above all the
//! `FlinksCode` that decides what the answer means.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /Authorize` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeRequest<'a> {
    /// The login to open a session for.
    pub login_id: &'a str,
    /// Always true: serve the latest cached data.
    pub most_recent_cached: bool,
}

/// `POST /Investments` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentsRequest<'a> {
    /// The session.
    pub request_id: &'a str,
    /// The login of the session.
    pub login_id: &'a str,
    /// Always true.
    pub most_recent_cached: bool,
}

/// The longest FlinksCode or RequestId kept: real ones are a few dozen
/// characters, and both end up in Redis.
const MAX_TOKEN: usize = 200;

/// The envelope fields every Flinks answer may carry, each read on its own:
/// a field that is missing, or not a string, is `None` (a non-string
/// `Message` is rendered as compact JSON instead) and never affects the
/// others.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Machine-readable code, e.g. `OPERATION_PENDING`.
    pub flinks_code: Option<String>,
    /// Human-readable message (not yet truncated).
    pub message: Option<String>,
    /// The session id (Authorize answers).
    pub request_id: Option<String>,
}

impl Envelope {
    /// The envelope of a body that may be anything: JSON or not, an object
    /// or not. Whatever cannot be read is left out.
    pub fn read(body: &[u8]) -> Envelope {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut fields)) => Envelope::from_fields(
                fields.remove("FlinksCode"),
                fields.remove("Message"),
                fields.remove("RequestId"),
            ),
            _ => Envelope::default(),
        }
    }

    fn from_fields(code: Option<Value>, message: Option<Value>, request_id: Option<Value>) -> Self {
        let token = |value: Option<Value>| match value {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_TOKEN => Some(s),
            _ => None,
        };
        let message = match message {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            // compact JSON; the caller truncates it like any message
            Some(other) => Some(other.to_string()),
        };
        Envelope {
            flinks_code: token(code),
            message,
            request_id: token(request_id),
        }
    }
}

/// What flinkq reads of a 200 from /Investments while the body streams by:
/// the envelope, and how many institutions `Investments` holds (`None` when
/// the field is missing). Any other field is skipped without being kept.
#[derive(Debug, Default)]
pub struct PayloadFields {
    /// The envelope (a 200 may still say `OPERATION_PENDING`).
    pub envelope: Envelope,
    /// Entries of the `Investments` array.
    pub institutions: Option<usize>,
}

impl<'de> Deserialize<'de> for PayloadFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = PayloadFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Flinks answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PayloadFields, A::Error> {
        let (mut code, mut message, mut request_id) = (None, None, None);
        let mut institutions = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "FlinksCode" => code = Some(map.next_value::<Value>()?),
                "Message" => message = Some(map.next_value::<Value>()?),
                "RequestId" => request_id = Some(map.next_value::<Value>()?),
                "Investments" => institutions = Some(map.next_value::<Institutions>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(PayloadFields {
            envelope: Envelope::from_fields(code, message, request_id),
            institutions,
        })
    }
}

/// The `Investments` array, counted, its entries skipped.
struct Institutions(usize);

impl<'de> Deserialize<'de> for Institutions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = Institutions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of institutions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Institutions, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Institutions(n))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_message_keeps_the_code_and_the_session() {
        let body = br#"{"FlinksCode":"SESSION_EXPIRED","Message":{"Text":"gone","Tries":[1,2]},"RequestId":"r-1"}"#;
        let envelope = Envelope::read(body);
        assert_eq!(envelope.flinks_code.as_deref(), Some("SESSION_EXPIRED"));
        assert_eq!(envelope.request_id.as_deref(), Some("r-1"));
        assert_eq!(
            envelope.message.as_deref(),
            Some(r#"{"Text":"gone","Tries":[1,2]}"#)
        );
    }

    #[test]
    fn fields_of_the_wrong_type_are_dropped_one_by_one() {
        let envelope = Envelope::read(br#"{"FlinksCode":7,"Message":"m","RequestId":12}"#);
        assert_eq!(
            envelope,
            Envelope {
                flinks_code: None,
                message: Some("m".into()),
                request_id: None,
            }
        );
        assert_eq!(Envelope::read(b"<html>oops</html>"), Envelope::default());
        assert_eq!(Envelope::read(b"[1,2]"), Envelope::default());
    }

    #[test]
    fn a_payload_is_counted_and_its_envelope_read() {
        let fields: PayloadFields = serde_json::from_slice(
            br#"{"Investments":[{"a":1},{"b":[2]}],"Message":null,"FlinksCode":"X","Other":{"deep":[1]}}"#,
        )
        .expect("parse");
        assert_eq!(fields.institutions, Some(2));
        assert_eq!(fields.envelope.flinks_code.as_deref(), Some("X"));
        assert!(serde_json::from_slice::<PayloadFields>(br#"{"Investments":{}}"#).is_err());
        assert!(serde_json::from_slice::<PayloadFields>(br#"[]"#).is_err());
    }
}
