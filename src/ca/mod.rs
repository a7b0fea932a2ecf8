//! X.509 issuance with the HSM CA key: the self-signed root, the appliance's own TLS
//! certificate, and (later) workload leaves, CRLs and OCSP responses.

pub mod import;
mod root;
pub mod serial;
mod server_cert;

pub use root::{build_root, load_root, root_params, RootCa};
pub use server_cert::{ensure_server_cert, write_private, ServerCert};

/// X.509 building or parsing failures.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate building or signing failed: {0}")]
    Build(#[from] rcgen::Error),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("malformed certificate in {path}: {reason}")]
    Malformed {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("CA certificate {path} was not issued for the HSM CA key (key mismatch)")]
    KeyMismatch { path: std::path::PathBuf },
}
