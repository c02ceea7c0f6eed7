//! Reading answer bodies without trusting their size: error bodies are read
//! up to a small cap; a 200 payload streams chunk by chunk into the caller's
//! [`PayloadTarget`] under FLINKQ_MAX_PAYLOAD, checked as UTF-8 and as JSON
//! of the payload's shape on the way.

use std::future::Future;
use std::io::{BufReader, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

use serde::de::DeserializeSeed;

use super::bodies::{PayloadCheck, PayloadFields};
use super::transport::{Chunks, TransportError};

/// Where a 200 payload goes while it arrives (the results temp file, or a
/// buffer for the Redis sink).
pub trait PayloadTarget: Send {
    /// Why a chunk could not be kept.
    type Error: std::fmt::Display;

    /// Appends one chunk.
    fn write_chunk(&mut self, chunk: &[u8])
    -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why a payload was not taken.
#[derive(Debug)]
pub(super) enum PayloadError {
    /// Over the limit (announced by Content-Length, or counted).
    TooLarge { limit: u64 },
    /// Not UTF-8 at this byte offset.
    NotUtf8 { offset: u64 },
    /// Not JSON, or not of the payload's shape.
    NotPayload(serde_json::Error),
    /// The body broke off or timed out.
    Network(TransportError),
    /// The target refused a chunk.
    Write(String),
}

/// The payload parser's read buffer: chunks of any size pass through it.
const PARSE_BUFFER: usize = 8 * 1024;

/// A payload whose whole body is at most this is checked where it arrived,
/// once whole: a thread hand-off per payload (a wake-up, a channel hop per
/// chunk, a reader fed byte by byte) costs more than parsing one this
/// small. A larger one goes to a blocking thread chunk by chunk, so no
/// payload is held whole by the client and no parse holds up the runtime.
const PARSE_IN_PLACE: usize = 16 * 1024;

/// Streams the body into `target`, at most `limit` bytes, and reads its
/// fields as `check` says (the stage's payload key and shape). Up to
/// [`PARSE_IN_PLACE`] bytes are kept and parsed in place at the end; past
/// that the JSON parser runs on a blocking thread fed chunk by chunk, so
/// the payload is never held whole in memory by the client.
pub(super) async fn stream_payload<T: PayloadTarget>(
    response: &mut impl Chunks,
    target: &mut T,
    limit: u64,
    check: PayloadCheck,
) -> Result<PayloadFields, PayloadError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(PayloadError::TooLarge { limit });
    }
    let mut utf8 = Utf8Check::default();
    let mut total: u64 = 0;
    let mut head = Vec::new();
    let mut parser: Option<BlockingParser> = None;
    // On every early return the parser's input is dropped: it sees the end
    // of the input, fails and ends on its own.
    while let Some(chunk) = response.chunk().await.map_err(PayloadError::Network)? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(PayloadError::TooLarge { limit });
        }
        utf8.feed(&chunk)
            .map_err(|offset| PayloadError::NotUtf8 { offset })?;
        target
            .write_chunk(&chunk)
            .await
            .map_err(|e| PayloadError::Write(e.to_string()))?;
        match parser.as_mut() {
            Some(parser) => parser.feed(chunk).await?,
            None if head.len() + chunk.len() <= PARSE_IN_PLACE => {
                head.extend_from_slice(&chunk);
            }
            None => {
                let mut started = BlockingParser::start(check);
                if !head.is_empty() {
                    started.feed(Bytes::from(std::mem::take(&mut head))).await?;
                }
                started.feed(chunk).await?;
                parser = Some(started);
            }
        }
    }
    utf8.finish()
        .map_err(|offset| PayloadError::NotUtf8 { offset })?;
    match parser {
        Some(parser) => parser.finish().await,
        // from the slice, not through `Read`: serde_json reads a slice in
        // place, a reader byte by byte (~4x the instructions)
        None => read_payload(serde_json::Deserializer::from_slice(&head), check)
            .map_err(PayloadError::NotPayload),
    }
}

/// The JSON parser of a payload too large to keep, on a blocking thread,
/// fed the body chunk by chunk.
struct BlockingParser {
    chunks: mpsc::Sender<Bytes>,
    parsed: tokio::task::JoinHandle<serde_json::Result<PayloadFields>>,
}

impl BlockingParser {
    fn start(check: PayloadCheck) -> Self {
        // A few chunks in flight: the parser keeps up with the socket, and a
        // slow parser holds back the reading instead of growing a queue.
        let (chunks, rx) = mpsc::channel::<Bytes>(4);
        let parsed = tokio::task::spawn_blocking(move || {
            // Small: the reader zero-fills its whole buffer before the first
            // read (64 KiB cost ~33k instructions per payload, more than the
            // parse of a typical one); the chunks queue in the channel anyway.
            let reader = BufReader::with_capacity(PARSE_BUFFER, ChannelReader::new(rx));
            read_payload(serde_json::Deserializer::from_reader(reader), check)
        });
        BlockingParser { chunks, parsed }
    }

    async fn feed(&mut self, chunk: Bytes) -> Result<(), PayloadError> {
        if self.chunks.send(chunk).await.is_err() {
            // The parser stopped before the end: the JSON is already known
            // to be bad, and its error says why.
            return Err(parser_error((&mut self.parsed).await));
        }
        Ok(())
    }

    async fn finish(self) -> Result<PayloadFields, PayloadError> {
        drop(self.chunks);
        match self.parsed.await {
            Ok(Ok(fields)) => Ok(fields),
            other => Err(parser_error(other)),
        }
    }
}

/// One JSON value of the stage's shape, then nothing but whitespace.
fn read_payload<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    check: PayloadCheck,
) -> serde_json::Result<PayloadFields> {
    let fields = check.deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
}

fn parser_error(
    ended: Result<Result<PayloadFields, serde_json::Error>, tokio::task::JoinError>,
) -> PayloadError {
    match ended {
        Ok(Err(error)) => PayloadError::NotPayload(error),
        // cannot happen: the parser stops only at a JSON error or the end
        Ok(Ok(_)) => PayloadError::Write("the payload check ended before the payload".into()),
        Err(join) => PayloadError::Write(format!("the payload check failed: {join}")),
    }
}

/// Reads at most `cap` bytes of the body and stops there, whatever its
/// size; `true` when there was more. The rest is never read: the
/// connection is closed instead of reused.
pub(super) async fn read_capped(
    response: &mut impl Chunks,
    cap: usize,
) -> Result<(Vec<u8>, bool), TransportError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// A blocking reader over the chunks the async side sends.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// UTF-8 validation across chunk boundaries. serde_json skips the strings
/// it is not asked to keep without checking them, so the payload's bytes
/// are checked here, all of them.
#[derive(Debug, Default)]
struct Utf8Check {
    /// The start of a character cut by the end of the previous chunk.
    carry: Vec<u8>,
    /// Bytes checked so far (for the error's offset).
    offset: u64,
}

impl Utf8Check {
    /// Checks the next chunk; `Err` holds the offset of the first bad byte.
    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), u64> {
        if !self.carry.is_empty() {
            // A character is at most 4 bytes: its end is within the next 3.
            let take = chunk.len().min(4 - self.carry.len());
            let mut joined = std::mem::take(&mut self.carry);
            let carried = joined.len();
            joined.extend_from_slice(&chunk[..take]);
            let consumed = match std::str::from_utf8(&joined) {
                Ok(_) => take,
                Err(e) if e.valid_up_to() > 0 => e.valid_up_to() - carried,
                Err(e) if e.error_len().is_none() && take == chunk.len() => {
                    // still cut: wait for more
                    self.carry = joined;
                    return Ok(());
                }
                Err(_) => return Err(self.offset),
            };
            self.offset += (carried + consumed) as u64;
            chunk = &chunk[consumed..];
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => {
                self.offset += chunk.len() as u64;
                Ok(())
            }
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                self.carry = chunk[valid..].to_vec();
                self.offset += valid as u64;
                Ok(())
            }
            Err(e) => Err(self.offset + e.valid_up_to() as u64),
        }
    }

    /// The body ended: a character still cut is an error.
    fn finish(&self) -> Result<(), u64> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(self.offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_in_chunks(bytes: &[u8], size: usize) -> Result<(), u64> {
        let mut check = Utf8Check::default();
        for chunk in bytes.chunks(size) {
            check.feed(chunk)?;
        }
        check.finish()
    }

    #[test]
    fn utf8_is_checked_across_every_chunk_boundary() {
        let text = "{\"Name\":\"Zoë — 日本 🎉\"}".as_bytes();
        for size in 1..=text.len() {
            assert_eq!(check_in_chunks(text, size), Ok(()), "chunks of {size}");
        }
        let mut bad = text.to_vec();
        bad.insert(10, 0xff);
        for size in 1..=bad.len() {
            assert_eq!(check_in_chunks(&bad, size), Err(10), "chunks of {size}");
        }
        // a character cut by the end of the body
        let cut = &"🎉".as_bytes()[..3];
        for size in 1..=3 {
            assert_eq!(check_in_chunks(cut, size), Err(0), "chunks of {size}");
        }
        // an overlong encoding and a lone continuation byte
        assert!(check_in_chunks(&[b'"', 0xc0, 0x80, b'"'], 1).is_err());
        assert!(check_in_chunks(&[b'"', 0x80, b'"'], 2).is_err());
    }

    #[test]
    fn the_channel_reader_reads_every_chunk_in_order() {
        let (tx, rx) = mpsc::channel(8);
        for part in ["{\"Inv", "estments\"", ":[1,2", ",3]}"] {
            tx.try_send(Bytes::from_static(part.as_bytes()))
                .expect("room");
        }
        drop(tx);
        let check = PayloadCheck {
            key: "Investments",
            shape: flinkq_shared::product::Shape::Array,
        };
        let reader = BufReader::new(ChannelReader::new(rx));
        let fields =
            read_payload(serde_json::Deserializer::from_reader(reader), check).expect("parse");
        assert_eq!(fields.entries, Some(3));
    }

    const INVESTMENTS: PayloadCheck = PayloadCheck {
        key: "Investments",
        shape: flinkq_shared::product::Shape::Array,
    };

    /// A body that arrives in the test's chunks, as a socket delivers them.
    struct InChunks(std::collections::VecDeque<Bytes>);

    impl Chunks for InChunks {
        fn content_length(&self) -> Option<u64> {
            None
        }

        async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
            Ok(self.0.pop_front())
        }
    }

    /// A 200 whose body arrives in chunks of `chunk` bytes.
    fn answer_in_chunks(body: &[u8], chunk: usize) -> InChunks {
        InChunks(body.chunks(chunk).map(Bytes::copy_from_slice).collect())
    }

    #[derive(Default)]
    struct Kept(Vec<u8>);

    impl PayloadTarget for Kept {
        type Error = std::convert::Infallible;

        async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), Self::Error> {
            self.0.extend_from_slice(chunk);
            Ok(())
        }
    }

    /// `{"Investments":[0,1,…]}` of about `bytes` bytes.
    fn investments_of(bytes: usize) -> (Vec<u8>, usize) {
        let mut text = String::from("{\"Investments\":[0");
        let mut entries = 1;
        while text.len() < bytes {
            text.push_str(&format!(",{entries}"));
            entries += 1;
        }
        text.push_str("]}");
        (text.into_bytes(), entries)
    }

    #[tokio::test]
    async fn a_payload_checked_in_place_or_on_a_blocking_thread_reads_the_same() {
        // whole in one chunk or many, below the in-place size or past it
        // (its first chunks kept, then handed to the blocking parser)
        for size in [
            40,
            PARSE_IN_PLACE - 10,
            PARSE_IN_PLACE + 10,
            5 * PARSE_IN_PLACE,
        ] {
            let (body, entries) = investments_of(size);
            for chunk in [body.len(), 4096, 1000, 7] {
                let mut answer = answer_in_chunks(&body, chunk);
                let mut kept = Kept::default();
                let fields = stream_payload(&mut answer, &mut kept, u64::MAX, INVESTMENTS)
                    .await
                    .unwrap_or_else(|e| panic!("{size} bytes in chunks of {chunk}: {e:?}"));
                assert_eq!(fields.entries, Some(entries), "{size} in chunks of {chunk}");
                assert_eq!(kept.0, body, "{size} in chunks of {chunk}: every byte kept");
            }
        }
    }

    #[tokio::test]
    async fn a_payload_that_is_not_json_fails_alike_in_place_and_on_a_blocking_thread() {
        for size in [40, 5 * PARSE_IN_PLACE] {
            let (mut body, _) = investments_of(size);
            // cut short: the array never closes
            body.truncate(body.len() - 2);
            for chunk in [body.len(), 1000] {
                let mut answer = answer_in_chunks(&body, chunk);
                let outcome =
                    stream_payload(&mut answer, &mut Kept::default(), u64::MAX, INVESTMENTS).await;
                assert!(
                    matches!(&outcome, Err(PayloadError::NotPayload(e)) if e.is_eof()),
                    "{size} in chunks of {chunk}: {outcome:?}"
                );
            }
            // not of the shape: an object where an array is due
            let wrong = format!(
                "{{\"Investments\":{{\"a\":1}},\"pad\":\"{}\"}}",
                " ".repeat(size)
            );
            let mut answer = answer_in_chunks(wrong.as_bytes(), 1000);
            let outcome =
                stream_payload(&mut answer, &mut Kept::default(), u64::MAX, INVESTMENTS).await;
            assert!(
                matches!(&outcome, Err(PayloadError::NotPayload(e)) if e.to_string().contains("the `Investments` array")),
                "{size}: {outcome:?}"
            );
        }
    }
}
