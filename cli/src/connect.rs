//! Finding the admin identity and dialing the coordinator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollcall_common::files::read_bounded_utf8;
use rollcall_common::proto::admin_service_client::AdminServiceClient;
use rollcall_common::tls::{DialOptions, channel, client_config};
use tonic::transport::Channel;

use super::CliError;

const MAX_PEM: u64 = 64 * 1024;

#[derive(Clone)]
pub struct AdminClient {
    pub inner: AdminServiceClient<Channel>,
}

impl AdminClient {
    /// Builds a lazily connecting client; nothing is dialed until the first call.
    pub fn connect(url: &str, identity: Option<&Path>) -> Result<Self, CliError> {
        let dir: PathBuf = match identity {
            Some(dir) => dir.to_path_buf(),
            None => {
                return Err(CliError::new(
                    2,
                    "no admin identity found; run `rollcall-server init` (it writes DATA_DIR/admin) and pass --identity DATA_DIR/admin, or set ROLLCALL_IDENTITY",
                ));
            }
        };
        let read = |name: &str| {
            read_bounded_utf8(&dir.join(name), MAX_PEM).map_err(|error| {
                CliError::new(
                    2,
                    format!(
                        "admin identity {} is incomplete ({error:#}); it must hold ca.pem, cert.pem and key.pem",
                        dir.display()
                    ),
                )
            })
        };
        let (ca, cert, key) = (read("ca.pem")?, read("cert.pem")?, read("key.pem")?);
        let addr =
            rollcall_common::net::parse_coordinator_url(url).map_err(|error| CliError::new(2, format!("{error:#}")))?;
        let config = client_config(&ca, Some((&cert, &key)))
            .map_err(|error| CliError::new(2, format!("admin identity {}: {error:#}", dir.display())))?;
        let channel = channel(&addr, Arc::new(config), &DialOptions::default())
            .map_err(|error| CliError::new(2, format!("{error:#}")))?;
        Ok(AdminClient {
            inner: AdminServiceClient::new(channel)
                .max_decoding_message_size(rollcall_common::proto::ADMIN_MAX_ANSWER_BYTES),
        })
    }
}
