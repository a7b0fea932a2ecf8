//! Relying parties nobody here wrote, run against a real appliance (SoftHSM2 token, HTTPS
//! on 127.0.0.1): pkilint lints the CA certificate, a workload leaf, an operator
//! certificate, the CRL and an OCSP response; Go's crypto/x509 and crypto/tls parse and
//! verify the certificates and use a workload leaf for mTLS in both directions. The tools
//! are required: a missing `go` or pkilint CLI fails the test (deploy/test.sh installs
//! them).

#[path = "../common/mod.rs"]
mod common;
mod go;
mod pkilint;
#[path = "../issuance/support.rs"]
#[allow(dead_code)]
mod support;

use common::TestAppliance;

/// The public URL the interop appliances put in certificates: a real host name (pkilint
/// rejects `localhost` in URIs). Tests still talk to 127.0.0.1 through `Served::base`.
pub const PUBLIC_URL: &str = "https://ca.example.com";

/// An appliance whose certificates name [`PUBLIC_URL`] (OCSP, CRL) and whose server
/// certificate also covers `ca.example.com`.
pub fn public_appliance(name: &str) -> TestAppliance {
    let app = TestAppliance::new(name);
    app.edit_config(
        r#"names = ["localhost", "127.0.0.1"]"#,
        &format!(
            "names = [\"localhost\", \"127.0.0.1\", \"ca.example.com\"]\npublic_url = \"{PUBLIC_URL}\""
        ),
    );
    app
}

/// A tool the interop tests need: on PATH, or (pkilint) in the venv deploy/lib.sh makes.
/// Panics with the install hint when it is missing; nothing here is ever skipped.
pub fn require(name: &str) -> std::path::PathBuf {
    let venv = std::env::var("CREDMINT_PKILINT_VENV")
        .unwrap_or_else(|_| "/opt/credmint/pkilint-venv".to_string());
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(std::path::PathBuf::from)
        .chain([std::path::Path::new(&venv).join("bin")]);
    for dir in dirs {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "required tool `{name}` not found on PATH nor in {venv}/bin: run \
         `. deploy/lib.sh && ensure_test_deps` (installs golang-go and pkilint; \
         deploy/test.sh and CI do this)"
    );
}

pub fn write(dir: &std::path::Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_string_lossy().into_owned()
}

pub fn leaf_pem(chain: &str) -> String {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_string()
}
