//! The demo (being written).

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("demo not yet built")
}
