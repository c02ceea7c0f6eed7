//! Generated batch names: `batch-<UTC time>-<4 hex>`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh batch name, e.g. `batch-20261124T134501Z-3f2a`.
pub fn generate() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let suffix = uuid::Uuid::new_v4().as_u128() as u16;
    format!("batch-{}-{suffix:04x}", compact_utc(now))
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (seconds).
pub fn compact_utc(unix_secs: u64) -> String {
    let stamp =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(unix_secs))
            .to_string();
    // 2026-11-24T13:45:01Z -> 20261124T134501Z
    stamp.chars().filter(|c| *c != '-' && *c != ':').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_are_unique() {
        assert_eq!(compact_utc(0), "19700101T000000Z");
        assert_eq!(compact_utc(1_795_527_901), "20261124T134501Z");
        let (a, b) = (generate(), generate());
        assert!(
            a.starts_with("batch-") && a.len() == "batch-20261124T134501Z-3f2a".len(),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
