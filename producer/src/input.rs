//! Reading loginIds from arguments and files: validated, deduplicated, and
//! every bad line reported with where it came from.

use std::collections::HashSet;
use std::io::BufRead;
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

/// Valid, unique loginIds in input order, and what was set aside.
#[derive(Debug, Default)]
pub struct LoginInput {
    /// Unique valid loginIds, first occurrence order.
    pub logins: Vec<LoginId>,
    /// Valid loginIds seen more than once (extra occurrences).
    pub duplicates: u64,
    /// Rejected lines.
    pub invalid: Vec<InvalidLine>,
    seen: HashSet<LoginId>,
}

impl LoginInput {
    /// Adds one candidate from `location`. Blank and `#` lines are skipped.
    pub fn add(&mut self, location: impl FnOnce() -> String, text: &str) {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return;
        }
        match LoginId::parse(text) {
            Ok(login) if self.seen.insert(login) => self.logins.push(login),
            Ok(_) => self.duplicates += 1,
            Err(error) => self.invalid.push(InvalidLine {
                location: location(),
                reason: error.to_string(),
            }),
        }
    }

    /// Adds command-line arguments (`argument 1`, `argument 2`, ...).
    pub fn add_arguments(&mut self, arguments: &[String]) {
        for (index, argument) in arguments.iter().enumerate() {
            self.add(|| format!("argument {}", index + 1), argument);
        }
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
                Ok(text) => self.add(|| format!("{name}:{number}"), text),
                Err(_) => self.invalid.push(InvalidLine {
                    location: format!("{name}:{number}"),
                    reason: "line is not valid UTF-8".into(),
                }),
            }
        }
    }
}

/// Most invalid lines printed; the rest are counted.
const MAX_PRINTED_INVALID: usize = 20;

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
    let mut input = LoginInput::default();
    input.add_arguments(arguments);
    if let Some(path) = file {
        let read_error = |source| CliError::Read {
            path: path.display().to_string(),
            source,
        };
        if path.as_os_str() == "-" {
            input
                .add_lines("stdin", std::io::stdin().lock())
                .map_err(read_error)?;
        } else {
            let opened = std::fs::File::open(path).map_err(read_error)?;
            input
                .add_lines(&path.display().to_string(), std::io::BufReader::new(opened))
                .map_err(read_error)?;
        }
    }
    for line in input.invalid.iter().take(MAX_PRINTED_INVALID) {
        eprintln!("{}: {}", line.location, line.reason);
    }
    if input.invalid.len() > MAX_PRINTED_INVALID {
        eprintln!(
            "... and {} more invalid lines",
            input.invalid.len() - MAX_PRINTED_INVALID
        );
    }
    if !input.invalid.is_empty() && !skip_invalid {
        return Err(CliError::InvalidInput {
            invalid: input.invalid.len(),
        });
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5e115eac-1209-4f19-641c-08d6d484e2fe";
    const B: &str = "4500022b-69be-4481-beee-08d845f8da3d";

    #[test]
    fn files_with_bom_crlf_blanks_comments_and_duplicates() {
        let text =
            format!("\u{feff}{A}\r\n\r\n# a comment\r\n  {B}  \r\n{A}\r\nnot-a-uuid\r\n\r\n");
        let mut input = LoginInput::default();
        input
            .add_lines("logins.txt", text.as_bytes())
            .expect("read");
        let logins: Vec<String> = input.logins.iter().map(ToString::to_string).collect();
        assert_eq!(logins, [A, B]);
        assert_eq!(input.duplicates, 1);
        assert_eq!(input.invalid.len(), 1);
        assert_eq!(input.invalid[0].location, "logins.txt:6");
        assert!(
            input.invalid[0].reason.contains("\"not-a-uuid\""),
            "{:?}",
            input.invalid[0]
        );
    }

    #[test]
    fn non_utf8_lines_are_invalid_lines_not_errors() {
        let mut input = LoginInput::default();
        let mut bytes = format!("{A}\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        input.add_lines("stdin", bytes.as_slice()).expect("read");
        assert_eq!(input.logins.len(), 1);
        assert_eq!(input.invalid[0].location, "stdin:2");
    }

    #[test]
    fn arguments_are_numbered_and_share_the_dedupe() {
        let mut input = LoginInput::default();
        input.add_arguments(&[A.into(), "x".into(), A.to_uppercase()]);
        input
            .add_lines("f", format!("{A}\n").as_bytes())
            .expect("read");
        assert_eq!(input.logins.len(), 1);
        assert_eq!(input.duplicates, 2);
        assert_eq!(input.invalid[0].location, "argument 2");
    }
}
