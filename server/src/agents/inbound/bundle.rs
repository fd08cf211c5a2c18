//! One chunk of a log bundle (runbook step 8).

use rollcall_common::proto;

use super::{MAX_BUNDLE_CHUNK, Refused, refuse, short};

/// A bundle chunk that passed the edge checks: a command id of 1 to
/// [`super::MAX_SHORT`] bytes and at most [`MAX_BUNDLE_CHUNK`] bytes of data.
#[derive(Debug, Clone)]
pub struct ValidChunk(proto::BundleChunk);

impl ValidChunk {
    pub fn into_inner(self) -> proto::BundleChunk {
        self.0
    }
}

impl TryFrom<proto::BundleChunk> for ValidChunk {
    type Error = Refused;

    fn try_from(chunk: proto::BundleChunk) -> Result<Self, Refused> {
        short("bundle.command_id", &chunk.command_id)?;
        if chunk.command_id.is_empty() {
            return refuse("bundle.command_id is empty");
        }
        if chunk.data.len() > MAX_BUNDLE_CHUNK {
            return refuse(format!("bundle chunk is larger than {MAX_BUNDLE_CHUNK} bytes"));
        }
        Ok(ValidChunk(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::inbound::MAX_SHORT;

    fn chunk(command_id: &str, bytes: usize) -> proto::BundleChunk {
        proto::BundleChunk {
            command_id: command_id.to_string(),
            data: vec![0; bytes],
            ..Default::default()
        }
    }

    #[test]
    fn data_accepts_the_limit_and_refuses_one_over() {
        assert!(ValidChunk::try_from(chunk("c1", MAX_BUNDLE_CHUNK)).is_ok());
        assert_eq!(
            ValidChunk::try_from(chunk("c1", MAX_BUNDLE_CHUNK + 1)).err(),
            Some(Refused(format!("bundle chunk is larger than {MAX_BUNDLE_CHUNK} bytes")))
        );
    }

    #[test]
    fn command_id_accepts_the_limit_and_refuses_one_over_or_empty() {
        assert!(ValidChunk::try_from(chunk(&"c".repeat(MAX_SHORT), 1)).is_ok());
        assert_eq!(
            ValidChunk::try_from(chunk(&"c".repeat(MAX_SHORT + 1), 1)).err(),
            Some(Refused(format!("bundle.command_id is longer than {MAX_SHORT} bytes")))
        );
        assert_eq!(
            ValidChunk::try_from(chunk("", 1)).err(),
            Some(Refused("bundle.command_id is empty".into()))
        );
    }
}
