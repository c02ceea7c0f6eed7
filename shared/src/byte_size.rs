//! Byte sizes as operators write them in settings (`FLINKQ_MAX_PAYLOAD`,
//! `FLINKQ_SERVE_MAX_BODY`): one parser, so every size setting reads alike.

/// Parses `64MiB`, `500 KB`, `1.5GiB` or `1048576` (bytes) with the
/// `parse-size` crate: `KiB`/`MiB`/`GiB` are powers of 1024, `KB`/`MB`/`GB`
/// (and bare `K`/`M`/`G`) powers of 1000, case-insensitive, the `B`
/// optional. `at_least` is the smallest useful value of the setting and
/// `why` says what a smaller one would do, so the error tells the operator
/// how to fix it.
pub fn parse_byte_size(input: &str, at_least: u64, why: &str) -> Result<u64, String> {
    let bytes = parse_size::parse_size(input).map_err(|error| match error {
        parse_size::Error::PosOverflow => format!("{input:?} is too large a byte size"),
        _ => format!(
            "{input:?} is not a byte size: use a number with an optional unit B, KB, MB, GB, KiB, MiB or GiB (e.g. 64MiB)"
        ),
    })?;
    if bytes < at_least {
        return Err(format!("{input:?} is too small: {why}"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn decimal_and_binary_units_read_as_their_standards_define_them() {
        let parse = |text| parse_byte_size(text, 1, "at least one byte");
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("512 KiB"), Ok(512 << 10));
        assert_eq!(parse("500KB"), Ok(500_000));
        assert_eq!(parse("2gb"), Ok(2_000_000_000));
        assert_eq!(parse("4096"), Ok(4096));
    }

    #[test]
    fn garbage_overflow_and_too_small_are_refused_with_the_fix() {
        let parse =
            |text| parse_byte_size(text, 1024, "a body limit under 1KiB refuses every request");
        for bad in ["", "MiB", "12 parsecs", "-5MiB"] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains("e.g. 64MiB"), "{bad:?}: {error}");
        }
        assert!(
            parse("99999999999999999999GiB")
                .expect_err("overflow")
                .contains("too large")
        );
        assert!(
            parse("10")
                .expect_err("under the minimum")
                .contains("refuses every request")
        );
        assert!(parse("0").is_err());
    }
}
