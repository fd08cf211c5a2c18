//! The seam between a session and the wire: a [`Transport`] opens the
//! agent's bidirectional stream, taking what the agent sends as a bounded
//! channel and giving back what the coordinator sends. [`GrpcTransport`]
//! is tonic's `AgentService/Connect` over mTLS; the session's tests use
//! channels instead, so the protocol code runs without a network.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use rollcall_common::proto::{AgentMessage, CoordinatorMessage, agent_service_client::AgentServiceClient};
use rollcall_common::tls::{DialOptions, channel, client_config};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::identity::Identity;

/// What the coordinator sends, until it ends the stream (`None`) or breaks
/// it (`Err`).
pub type Inbound = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, tonic::Status>> + Send>>;

#[async_trait]
pub trait Transport: Send {
    /// Opens the stream. `outbound` already holds the hello; the stream
    /// carries what is queued on it until the session drops its sender.
    async fn open(&mut self, outbound: mpsc::Receiver<AgentMessage>) -> Result<Inbound, tonic::Status>;
}

/// `AgentService/Connect` to one coordinator, with the agent's identity.
pub struct GrpcTransport {
    client: AgentServiceClient<Channel>,
}

impl GrpcTransport {
    /// Prepares the connection (TLS config, lazy channel); nothing is sent yet.
    pub fn new(url: &str, identity: &Identity, dial: &DialOptions) -> anyhow::Result<Self> {
        let addr = rollcall_common::net::parse_coordinator_url(url)?;
        let tls = client_config(&identity.ca_pem, Some((&identity.cert_pem, identity.key_pem.expose())))?;
        let client = AgentServiceClient::new(channel(&addr, Arc::new(tls), dial)?)
            .max_decoding_message_size(dial.max_decoding_message_size);
        Ok(GrpcTransport { client })
    }
}

#[async_trait]
impl Transport for GrpcTransport {
    async fn open(&mut self, outbound: mpsc::Receiver<AgentMessage>) -> Result<Inbound, tonic::Status> {
        let response = self.client.connect(ReceiverStream::new(outbound)).await?;
        Ok(Box::pin(response.into_inner()))
    }
}
