//! The typed JSON bodies flinkq sends to and reads from Flinks.
//!
//! Answers are read field by field: one field of an unexpected type (a
//! `Message` that is an object) must not hide the others, above all the
//! `FlinksCode` that decides what the answer means.

use std::fmt;

use flinkq_shared::LoginId;
use flinkq_shared::product::{Call, Part, Shape};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /Authorize` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeRequest<'a> {
    /// The login to open a session for.
    pub login_id: &'a str,
    /// Always true: serve the latest cached data.
    pub most_recent_cached: bool,
}

/// The JSON body of a POST `call`: its fields from the table
/// (`Text` a string, `RequestId` and `LoginId` strings, `True` true).
pub fn call_body(call: &Call, login: &LoginId, request_id: &str) -> Map<String, Value> {
    call.body
        .iter()
        .map(|(field, part)| {
            let value = match part {
                Part::Text(text) => Value::from(*text),
                Part::RequestId => Value::from(request_id),
                Part::LoginId => Value::from(login.to_string()),
                Part::True => Value::Bool(true),
            };
            ((*field).to_owned(), value)
        })
        .collect()
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
        // The three fields only: the others are skipped, never built into
        // a map of values (a third of the instructions of a small answer).
        let mut de = serde_json::Deserializer::from_slice(body);
        match de.deserialize_map(EnvelopeOnly) {
            Ok(envelope) if de.end().is_ok() => envelope,
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

/// The envelope's fields, by name; any other is skipped unread.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum EnvelopeField {
    FlinksCode,
    Message,
    RequestId,
    #[serde(other)]
    Other,
}

/// Reads an answer object's envelope fields and nothing else.
struct EnvelopeOnly;

impl<'de> Visitor<'de> for EnvelopeOnly {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Flinks answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let (mut code, mut message, mut request_id) = (None, None, None);
        while let Some(field) = map.next_key::<EnvelopeField>()? {
            match field {
                EnvelopeField::FlinksCode => code = Some(map.next_value::<Value>()?),
                EnvelopeField::Message => message = Some(map.next_value::<Value>()?),
                EnvelopeField::RequestId => request_id = Some(map.next_value::<Value>()?),
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope::from_fields(code, message, request_id))
    }
}

/// What flinkq reads of a stage's 200 while the body streams by: the
/// envelope, and how many entries the stage's payload key holds (array
/// entries or object fields; `None` when the key is missing). Any other
/// field is skipped without being kept.
#[derive(Debug, Default)]
pub struct PayloadFields {
    /// The envelope (a 200 may still say `OPERATION_PENDING`).
    pub envelope: Envelope,
    /// Entries of the payload's key.
    pub entries: Option<usize>,
}

/// Reads a 200 body as the payload of a stage whose payload is `key`, of
/// JSON type `shape` (the stage's `payload`). Any other type under `key`
/// is an error that names the key and the expected shape.
#[derive(Debug, Clone, Copy)]
pub struct PayloadCheck {
    /// The top-level key.
    pub key: &'static str,
    /// Its JSON type.
    pub shape: Shape,
}

impl<'de> DeserializeSeed<'de> for PayloadCheck {
    type Value = PayloadFields;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PayloadFields, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadCheck {
    type Value = PayloadFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Flinks answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PayloadFields, A::Error> {
        let (mut code, mut message, mut request_id) = (None, None, None);
        let mut entries = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "FlinksCode" => code = Some(map.next_value::<Value>()?),
                "Message" => message = Some(map.next_value::<Value>()?),
                "RequestId" => request_id = Some(map.next_value::<Value>()?),
                k if k == self.key => entries = Some(map.next_value_seed(Entries(self))?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(PayloadFields {
            envelope: Envelope::from_fields(code, message, request_id),
            entries,
        })
    }
}

/// The payload key's value, its entries counted and skipped.
struct Entries(PayloadCheck);

impl<'de> DeserializeSeed<'de> for Entries {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entries {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the `{}` {}", self.0.key, self.0.shape.as_str())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        if self.0.shape != Shape::Array {
            return Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Seq,
                &self,
            ));
        }
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        if self.0.shape != Shape::Object {
            return Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Map,
                &self,
            ));
        }
        let mut n = 0;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
            n += 1;
        }
        Ok(n)
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

    /// Parses `body` as a stage's payload, the way the client does.
    pub(crate) fn check(
        key: &'static str,
        shape: Shape,
        body: &[u8],
    ) -> serde_json::Result<PayloadFields> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let fields = PayloadCheck { key, shape }.deserialize(&mut de)?;
        de.end()?;
        Ok(fields)
    }

    #[test]
    fn a_payload_is_counted_and_its_envelope_read() {
        let fields = check(
            "Investments",
            Shape::Array,
            br#"{"Investments":[{"a":1},{"b":[2]}],"Message":null,"FlinksCode":"X","Other":{"deep":[1]}}"#,
        )
        .expect("parse");
        assert_eq!(fields.entries, Some(2));
        assert_eq!(fields.envelope.flinks_code.as_deref(), Some("X"));
        assert!(check("Investments", Shape::Array, br#"[]"#).is_err());
        assert!(check("Investments", Shape::Array, br#"{"Investments":[]} x"#).is_err());
    }

    #[test]
    fn every_products_payload_key_is_checked_for_its_shape() {
        for product in flinkq_shared::Product::all() {
            for stage in product.stages() {
                let (key, shape) = stage.payload;
                let (good, bad, count) = match shape {
                    Shape::Array => (
                        format!(r#"{{"{key}":[1,{{"x":2}},[3]],"Login":{{}}}}"#),
                        format!(r#"{{"{key}":{{"a":1}}}}"#),
                        3,
                    ),
                    Shape::Object => (
                        format!(r#"{{"Login":{{}},"{key}":{{"a":1,"b":[2]}}}}"#),
                        format!(r#"{{"{key}":[1]}}"#),
                        2,
                    ),
                };
                let fields = check(key, shape, good.as_bytes()).expect("a payload of its shape");
                assert_eq!(fields.entries, Some(count), "{product}: {good}");
                let error = check(key, shape, bad.as_bytes())
                    .expect_err("the wrong shape")
                    .to_string();
                assert!(
                    error.contains(&format!("the `{key}` {}", shape.as_str())),
                    "{product}: {error}"
                );
                for wrong in ["1", "\"x\"", "null", "true"] {
                    let body = format!(r#"{{"{key}":{wrong}}}"#);
                    let error = check(key, shape, body.as_bytes())
                        .expect_err("not its shape")
                        .to_string();
                    assert!(error.contains(key), "{product}: {error}");
                }
                let missing = check(key, shape, br#"{"Other":[1]}"#).expect("parses");
                assert_eq!(missing.entries, None, "{product}: a missing key is seen");
            }
        }
    }

    #[test]
    fn every_post_body_is_built_from_the_table() {
        let login = LoginId::random();
        let body = |product: &str, stage: u8, accepted: bool| {
            let product: flinkq_shared::Product = product.parse().expect("known");
            let call = product.stage(stage).expect("stage").call(accepted);
            Value::Object(call_body(call, &login, "r/1"))
        };
        assert_eq!(
            body("investments", 0, false),
            serde_json::json!({"RequestId": "r/1", "LoginId": login.to_string(), "MostRecentCached": true})
        );
        assert_eq!(
            body("investments", 0, true),
            body("investments", 0, false),
            "repeated as it was"
        );
        assert_eq!(
            body("accounts-detail", 0, false),
            serde_json::json!({"RequestId": "r/1"})
        );
        assert_eq!(
            body("accounts-detail", 0, true),
            serde_json::json!({}),
            "the Async GET has no body"
        );
        assert_eq!(
            body("accounts-summary", 0, false),
            serde_json::json!({"RequestId": "r/1"})
        );
        assert_eq!(
            body("statements", 0, false),
            serde_json::json!({"RequestId": "r/1", "NumberOfStatements": "MostRecent"})
        );
        assert_eq!(
            body("attributes", 0, false),
            serde_json::json!({"RequestId": "r/1"})
        );
        assert_eq!(body("attributes", 1, false), serde_json::json!({}));
    }
}
