//! `Secret`: a string that never shows in logs, errors or `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value (the Flinks auth key, an API token). `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret set directly or as a file's content (the `…_FILE`
    /// variables, as orchestrators mount secrets), with surrounding
    /// whitespace trimmed because mounted files end with a newline. `None`
    /// when neither is set; an empty secret is refused, since it would
    /// authenticate nothing or everything. Clap keeps the two exclusive.
    pub fn from_value_or_file(
        value: Option<&Secret>,
        file: Option<&Path>,
    ) -> Result<Option<Secret>, SecretSourceError> {
        let text = match (value, file) {
            (Some(value), _) => value.expose().trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| SecretSourceError::Read {
                    path: path.to_owned(),
                    source,
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        if text.is_empty() {
            return Err(SecretSourceError::Empty);
        }
        Ok(Some(Secret(text)))
    }
}

/// Why a configured secret cannot be used. The caller names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SecretSourceError {
    /// Its file cannot be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is empty, or only whitespace.
    #[error("it is empty")]
    Empty,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::{Secret, SecretSourceError};

    #[test]
    fn never_printed() {
        let key = Secret::new("sk_live_123");
        assert_eq!(format!("{key:?} {key}"), "Secret(***) ***");
        assert_eq!(key.expose(), "sk_live_123");
    }

    #[test]
    fn a_mounted_secret_file_is_trimmed_and_an_empty_one_refused() {
        let path = std::env::temp_dir().join(format!("flinkq-secret-{}", std::process::id()));
        std::fs::write(&path, "  from-file\n").expect("write");
        let read = Secret::from_value_or_file(None, Some(&path)).expect("read");
        assert_eq!(
            read.map(|s| s.expose().to_owned()),
            Some("from-file".into())
        );
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(
            Secret::from_value_or_file(None, Some(&path)),
            Err(SecretSourceError::Empty)
        ));
        std::fs::remove_file(&path).expect("cleanup");
        assert!(matches!(
            Secret::from_value_or_file(None, Some(&path)),
            Err(SecretSourceError::Read { .. })
        ));
        assert!(matches!(
            Secret::from_value_or_file(Some(&Secret::new(" ")), None),
            Err(SecretSourceError::Empty)
        ));
        assert!(
            Secret::from_value_or_file(None, None)
                .expect("unset")
                .is_none()
        );
    }
}
