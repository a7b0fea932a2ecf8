//! Generates the SPIFFE Workload API types and tonic service from the upstream proto
//! (no `package` statement, so prost writes `$OUT_DIR/_.rs`). protox compiles the proto in
//! Rust, so building credmint never needs a protoc binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "src/agent/workload_api";
    println!("cargo:rerun-if-changed={dir}/workload.proto");
    let descriptors = protox::compile(["workload.proto"], [dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
