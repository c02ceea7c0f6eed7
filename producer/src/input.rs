//! Reading loginIds from arguments and files: validated, deduplicated, and
//! every bad line reported with where it came from.
//!
//! Input is read once, as a stream: each valid, first-seen loginId is
//! appended (16 bytes) to an anonymous spool file, and only the set of ids
//! seen so far stays in memory. Nothing touches Redis until the whole input
//! is validated; then [`LoginInput::next_chunk`] reads the spool back a
//! chunk at a time. So a 100,000-line file is never held twice in memory.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use flinkq_shared::LoginId;

use crate::error::CliError;

/// One rejected input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// `logins.txt:17`, `stdin:3` or `argument 2`.
    pub location: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Most invalid lines kept (and printed); the rest are counted.
pub const MAX_KEPT_INVALID: usize = 20;

/// Validates input as it streams by, spooling the valid unique loginIds.
#[derive(Debug)]
pub struct Validator {
    spool: BufWriter<File>,
    seen: HashSet<LoginId>,
    duplicates: u64,
    invalid: Vec<InvalidLine>,
    invalid_count: u64,
}

impl Validator {
    /// A validator spooling to a new anonymous temp file.
    pub fn new() -> std::io::Result<Self> {
        Ok(Validator {
            spool: BufWriter::new(tempfile::tempfile()?),
            seen: HashSet::new(),
            duplicates: 0,
            invalid: Vec::new(),
            invalid_count: 0,
        })
    }

    /// Adds one candidate from `location`. Blank and `#` lines are skipped.
    pub fn add(&mut self, location: impl FnOnce() -> String, text: &str) -> std::io::Result<()> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(());
        }
        match LoginId::parse(text) {
            Ok(login) if self.seen.insert(login) => self.spool.write_all(login.as_bytes())?,
            Ok(_) => self.duplicates += 1,
            Err(error) => self.reject(location, error.to_string()),
        }
        Ok(())
    }

    /// Adds one value of a JSON list (the HTTP API): the same rule as a
    /// line, except that a blank value or a `#` comment is not skipped but
    /// invalid (a list element is never a comment).
    pub fn add_value(
        &mut self,
        location: impl FnOnce() -> String,
        text: &str,
    ) -> std::io::Result<()> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            self.reject(location, format!("{text:?} is not a loginId (a UUID)"));
            return Ok(());
        }
        self.add(location, text)
    }

    fn reject(&mut self, location: impl FnOnce() -> String, reason: String) {
        self.invalid_count += 1;
        if self.invalid.len() < MAX_KEPT_INVALID {
            self.invalid.push(InvalidLine {
                location: location(),
                reason,
            });
        }
    }

    /// Adds command-line arguments (`argument 1`, `argument 2`, ...).
    pub fn add_arguments(&mut self, arguments: &[String]) -> std::io::Result<()> {
        for (index, argument) in arguments.iter().enumerate() {
            self.add(|| format!("argument {}", index + 1), argument)?;
        }
        Ok(())
    }

    /// Streams `reader` line by line (`name:line` locations, 1-based). A
    /// UTF-8 BOM and CRLF line ends are accepted; a line that is not UTF-8 is
    /// an invalid line, not an error.
    pub fn add_lines(&mut self, name: &str, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut buffer = Vec::new();
        let mut number = 0usize;
        loop {
            buffer.clear();
            if reader.read_until(b'\n', &mut buffer)? == 0 {
                return Ok(());
            }
            number += 1;
            let mut bytes = buffer.as_slice();
            if number == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            match std::str::from_utf8(bytes) {
                Ok(text) => self.add(|| format!("{name}:{number}"), text)?,
                Err(_) => self.reject(
                    || format!("{name}:{number}"),
                    "line is not valid UTF-8".into(),
                ),
            }
        }
    }

    /// Ends validation: the spool is rewound for reading.
    pub fn finish(self) -> std::io::Result<LoginInput> {
        let mut spool = self.spool.into_inner().map_err(|e| e.into_error())?;
        spool.rewind()?;
        Ok(LoginInput {
            spool: BufReader::new(spool),
            unique: self.seen.len() as u64,
            duplicates: self.duplicates,
            invalid: self.invalid,
            invalid_count: self.invalid_count,
        })
    }
}

/// Validated input: the unique valid loginIds (spooled, in first-seen
/// order), and what was set aside.
#[derive(Debug)]
pub struct LoginInput {
    spool: BufReader<File>,
    /// Unique valid loginIds.
    pub unique: u64,
    /// Valid loginIds seen more than once (extra occurrences).
    pub duplicates: u64,
    /// The first [`MAX_KEPT_INVALID`] rejected lines.
    pub invalid: Vec<InvalidLine>,
    /// Rejected lines in all.
    pub invalid_count: u64,
}

impl LoginInput {
    /// The next up to `max` loginIds; `None` once all were read.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<LoginId>>, CliError> {
        let mut chunk = Vec::with_capacity(max.min(4_096));
        let mut bytes = [0u8; 16];
        while chunk.len() < max {
            match self.spool.read_exact(&mut bytes) {
                Ok(()) => chunk.push(LoginId::from_bytes(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(source) => return Err(CliError::Spool { source }),
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// Every remaining loginId at once (for small inputs: arguments).
    pub fn read_all(&mut self) -> Result<Vec<LoginId>, CliError> {
        Ok(self.next_chunk(usize::MAX)?.unwrap_or_default())
    }
}

/// Reads loginIds from `arguments` and `file` (`-` = stdin) and validates
/// all of them before anything touches Redis: invalid lines are listed on
/// stderr and, unless `skip_invalid`, stop the command with nothing done.
pub fn collect(
    arguments: &[String],
    file: Option<&Path>,
    skip_invalid: bool,
) -> Result<LoginInput, CliError> {
    if arguments.is_empty() && file.is_none() {
        return Err(CliError::NoInput);
    }
    let spool_error = |source| CliError::Spool { source };
    let mut validator = Validator::new().map_err(spool_error)?;
    validator.add_arguments(arguments).map_err(spool_error)?;
    if let Some(path) = file {
        let read_error = |source| CliError::Read {
            path: path.display().to_string(),
            source,
        };
        if path.as_os_str() == "-" {
            validator
                .add_lines("stdin", std::io::stdin().lock())
                .map_err(read_error)?;
        } else {
            let opened = File::open(path).map_err(read_error)?;
            validator
                .add_lines(&path.display().to_string(), BufReader::new(opened))
                .map_err(read_error)?;
        }
    }
    let input = validator.finish().map_err(spool_error)?;
    for line in &input.invalid {
        eprintln!("{}: {}", line.location, line.reason);
    }
    let unlisted = input.invalid_count - input.invalid.len() as u64;
    if unlisted > 0 {
        eprintln!("... and {unlisted} more invalid lines");
    }
    if input.invalid_count > 0 && !skip_invalid {
        return Err(CliError::InvalidInput {
            invalid: input.invalid_count,
        });
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5e115eac-1209-4f19-641c-08d6d484e2fe";
    const B: &str = "4500022b-69be-4481-beee-08d845f8da3d";

    fn strings(input: &mut LoginInput) -> Vec<String> {
        let logins = input.read_all().expect("spool");
        logins.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn files_with_bom_crlf_blanks_comments_and_duplicates() {
        let text =
            format!("\u{feff}{A}\r\n\r\n# a comment\r\n  {B}  \r\n{A}\r\nnot-a-uuid\r\n\r\n");
        let mut validator = Validator::new().expect("spool");
        validator
            .add_lines("logins.txt", text.as_bytes())
            .expect("read");
        let mut input = validator.finish().expect("finish");
        assert_eq!(strings(&mut input), [A, B]);
        assert_eq!((input.unique, input.duplicates), (2, 1));
        assert_eq!(input.invalid_count, 1);
        assert_eq!(input.invalid[0].location, "logins.txt:6");
        assert!(
            input.invalid[0].reason.contains("\"not-a-uuid\""),
            "{:?}",
            input.invalid[0]
        );
    }

    #[test]
    fn non_utf8_lines_are_invalid_lines_not_errors() {
        let mut validator = Validator::new().expect("spool");
        let mut bytes = format!("{A}\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        validator
            .add_lines("stdin", bytes.as_slice())
            .expect("read");
        let input = validator.finish().expect("finish");
        assert_eq!(input.unique, 1);
        assert_eq!(input.invalid[0].location, "stdin:2");
    }

    #[test]
    fn arguments_are_numbered_and_share_the_dedupe() {
        let mut validator = Validator::new().expect("spool");
        validator
            .add_arguments(&[A.into(), "x".into(), A.to_uppercase()])
            .expect("add");
        validator
            .add_lines("f", format!("{A}\n").as_bytes())
            .expect("read");
        let input = validator.finish().expect("finish");
        assert_eq!(input.unique, 1);
        assert_eq!(input.duplicates, 2);
        assert_eq!(input.invalid[0].location, "argument 2");
    }

    #[test]
    fn chunks_come_back_in_input_order_and_only_the_first_invalid_lines_are_kept() {
        let logins: Vec<LoginId> = (0..2_500).map(|_| LoginId::random()).collect();
        let mut text: String = logins.iter().map(|l| format!("{l}\n")).collect();
        for _ in 0..50 {
            text.push_str("bad\n");
        }
        let mut validator = Validator::new().expect("spool");
        validator.add_lines("big", text.as_bytes()).expect("read");
        let mut input = validator.finish().expect("finish");
        assert_eq!(input.invalid_count, 50);
        assert_eq!(input.invalid.len(), MAX_KEPT_INVALID);
        assert_eq!(input.invalid[0].location, "big:2501");
        let mut back = Vec::new();
        while let Some(chunk) = input.next_chunk(1_000).expect("chunk") {
            assert!(!chunk.is_empty() && chunk.len() <= 1_000);
            back.extend(chunk);
        }
        assert_eq!(back, logins);
    }
}
