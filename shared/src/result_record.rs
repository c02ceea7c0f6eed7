//! Result payloads: what a successful poll's commit records about where the
//! payload is, and the gzip encoding of payloads kept in Redis.
//!
//! Both sinks leave a pointer in Redis (`result:<loginId>:<product>`, with a TTL), so
//! `flinkq result <loginId>` finds the newest payload whichever sink the
//! worker used: the files sink points at the file it wrote, the Redis sink
//! holds the compressed payload itself.

use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// What the commit of a successful poll records, in the same script call
/// that finishes the job (so a payload is recorded exactly when its job
/// succeeds).
#[derive(Clone, PartialEq, Eq)]
pub enum ResultRecord {
    /// The worker wrote the payload to this file before the commit.
    File {
        /// Absolute path of `<loginId>.json`.
        path: String,
        /// How long the pointer is kept.
        ttl: Duration,
    },
    /// The payload itself, gzip-compressed, stored by the commit.
    Redis {
        /// The gzip bytes.
        gzip: Vec<u8>,
        /// How long the payload is kept.
        ttl: Duration,
    },
}

impl std::fmt::Debug for ResultRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultRecord::File { path, ttl } => f
                .debug_struct("File")
                .field("path", path)
                .field("ttl", ttl)
                .finish(),
            ResultRecord::Redis { gzip, ttl } => f
                .debug_struct("Redis")
                .field("gzip_bytes", &gzip.len())
                .field("ttl", ttl)
                .finish(),
        }
    }
}

impl ResultRecord {
    /// The sink's name as stored: `file` or `redis`.
    pub fn sink(&self) -> &'static str {
        match self {
            ResultRecord::File { .. } => "file",
            ResultRecord::Redis { .. } => "redis",
        }
    }

    /// The stored data: the path, or the gzip bytes.
    pub fn data(&self) -> &[u8] {
        match self {
            ResultRecord::File { path, .. } => path.as_bytes(),
            ResultRecord::Redis { gzip, .. } => gzip,
        }
    }

    /// How long it is kept.
    pub fn ttl(&self) -> Duration {
        match self {
            ResultRecord::File { ttl, .. } | ResultRecord::Redis { ttl, .. } => *ttl,
        }
    }
}

/// The newest stored result of a login, as read back from Redis. `Debug`
/// shows a Redis payload's size, not its bytes (see [`ResultPlace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// The job that stored it.
    pub job: crate::JobId,
    /// When (ms, Redis clock).
    pub stored_ms: u64,
    /// Where the payload is.
    pub place: ResultPlace,
}

/// Where a stored payload is.
#[derive(Clone, PartialEq, Eq)]
pub enum ResultPlace {
    /// In this file, on the worker's results volume.
    File(String),
    /// In Redis, gzip-compressed (these bytes).
    Redis(Vec<u8>),
}

impl std::fmt::Debug for ResultPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultPlace::File(path) => f.debug_tuple("File").field(path).finish(),
            ResultPlace::Redis(gzip) => f.debug_tuple("Redis").field(&gzip.len()).finish(),
        }
    }
}

/// The gzip header [`compress`] writes (RFC 1952): deflate, no flags, no
/// time, "fastest" (`XFL` 4), unknown OS; what `GzEncoder` writes at
/// `Compression::fast()`.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

thread_local! {
    /// Each thread's deflate state, reset per payload instead of built
    /// anew: a new one allocates (and the allocator maps, then unmaps)
    /// some 300 KiB of tables per payload. flate2's `GzEncoder` has no
    /// reset, its `Compress` has: [`compress`] writes the gzip header and
    /// trailer around it.
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// Gzip-compresses a payload (JSON compresses about tenfold), with the
/// calling thread's deflate state.
pub fn compress(payload: &[u8]) -> Vec<u8> {
    DEFLATE.with(|deflate| gzip(&mut deflate.borrow_mut(), payload))
}

/// `payload` as one gzip member, compressed by `deflate` from its start.
fn gzip(deflate: &mut Compress, payload: &[u8]) -> Vec<u8> {
    deflate.reset();
    let mut gzip = Vec::with_capacity(GZIP_HEADER.len() + payload.len() / 4 + 64);
    gzip.extend_from_slice(&GZIP_HEADER);
    loop {
        let read = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
        let input = payload.get(read..).unwrap_or_default();
        // the output only grows between calls: compress_vec fills what is
        // reserved and never allocates
        gzip.reserve(input.len() / 4 + 64);
        match deflate.compress_vec(input, &mut gzip, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            Ok(Status::Ok | Status::BufError) => {}
            // deflate has no way to fail on bytes in memory; were it to,
            // an empty stream reads back as corrupt, never as another payload
            Err(_) => return Vec::new(),
        }
    }
    let mut crc = Crc::new();
    crc.update(payload);
    gzip.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32, as RFC 1952 says
    gzip.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    gzip
}

/// Decompresses a payload stored by [`compress`].
pub fn decompress(gzip: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(gzip.len() * 4);
    GzDecoder::new(gzip).read_to_end(&mut payload)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_shrink() {
        let payload = br#"{"Investments":[{"Accounts":[]}],"Message":"OK"}"#.repeat(50);
        let gzip = compress(&payload);
        assert_eq!(&gzip[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(gzip.len() * 5 < payload.len(), "{} bytes", gzip.len());
        assert_eq!(decompress(&gzip).expect("decompress"), payload);
    }

    #[test]
    fn a_payload_compressed_after_another_decompresses_to_its_own_bytes() {
        // one deflate state serves every payload of a thread: nothing of
        // the one before may leak into the next (dictionary, length, CRC)
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|n| format!("{{\"n\":{n}}},").into_bytes())
            .collect();
        let small = br#"{"Investments":[],"Message":"OK"}"#.to_vec();
        let payloads = [big.clone(), small.clone(), Vec::new(), small, big];
        let compressed: Vec<Vec<u8>> = payloads.iter().map(|p| compress(p)).collect();
        for (payload, gzip) in payloads.iter().zip(&compressed) {
            assert_eq!(&gzip[..10], &GZIP_HEADER);
            assert_eq!(&decompress(gzip).expect("decompress"), payload);
        }
        assert_eq!(
            compressed[1], compressed[3],
            "the same bytes, the same gzip"
        );
        assert_eq!(compressed[0], compressed[4]);
        // and what it writes is what a fresh `GzEncoder` would
        let mut fresh = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut fresh, &payloads[1]).expect("write");
        assert_eq!(fresh.finish().expect("finish"), compressed[1]);
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        assert!(decompress(b"not gzip at all").is_err());
        let mut gzip = compress(b"{\"a\":1}");
        gzip.truncate(gzip.len() / 2);
        assert!(decompress(&gzip).is_err());
    }

    #[test]
    fn debug_output_never_dumps_payloads() {
        let record = ResultRecord::Redis {
            gzip: vec![7; 1000],
            ttl: Duration::from_secs(1),
        };
        let shown = format!("{record:?}");
        assert!(shown.contains("1000") && shown.len() < 100, "{shown}");
    }
}
