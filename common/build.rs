//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so building
//! rollcall needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let files = [
        proto_root.join("rollcall/v1/agent.proto"),
        proto_root.join("rollcall/v1/admin.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("rollcall_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The generated `connect` constructor would clash with the `Connect` rpc;
        // rollcall dials through its own TLS connector anyway.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
