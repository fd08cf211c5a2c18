//! Secrets held in memory: private keys in PEM and enrolment tokens.
//!
//! A [`Secret`] never prints (its `Debug` says `[redacted]`, and it has no
//! `Display`), so a `{:?}` of a struct that holds one cannot leak it into a
//! log line or a panic message; its bytes are overwritten when it is
//! dropped. Reading it is explicit: [`Secret::expose`].

use std::fmt;

use zeroize::Zeroizing;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(Zeroizing::new(text.into()))
    }

    /// The secret text, for the one place that needs it (a TLS config, a
    /// file written owner-only, an enrolment request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret::new(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// For clap: `#[arg(value_parser = rollcall_common::secret::parse)]`.
pub fn parse(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Secret,
        }
        let holder = Holder {
            token: Secret::new("rct_s3cr3t"),
        };
        let printed = format!("{holder:?} {holder:#?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert_eq!(holder.token.expose(), "rct_s3cr3t");
    }

    #[test]
    fn round_trips_through_serde() {
        let secret = Secret::new("key material");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"key material\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, secret);
    }
}
