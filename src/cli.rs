//! Command line: verbs, and the one place that maps errors to exit codes.
//!
//! Exit codes (stable, documented in README): 0 ok, 2 usage, 3 configuration,
//! 10 PKCS#11 module cannot be loaded, 11 token not found, 12 wrong PIN, 13 PIN locked,
//! 14 key missing or mismatched, 15 other HSM failure, 16 PIN source unreadable,
//! 4 local file I/O (names the path), 20 ledger error, 21 CA/TLS error, 22 refusing to
//! fork an existing ledger, 23 refusing to write benchmark data into a real ledger,
//! 30 appliance unreachable, 31 request refused (4xx), 32 appliance error (5xx) or an
//! answer not of the documented shape,
//! 1 anything else.

mod credentials;
mod governance;
mod health;
mod monitor;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use serde_json::Value;

use crate::agent::AgentError;
use crate::client::{ClientError, OperatorClient, Target};
use crate::config::{Config, ConfigError};
use crate::hsm::{Hsm, HsmError};
use crate::init::InitError;
use crate::keyset::KeySet;
use crate::serve::ServeError;
use crate::wire::{
    AddOperator, ApproveOperator, EnrollmentRequest, EnrollmentToken, ReasonBody, Registration,
};

#[derive(Debug, Parser)]
#[command(
    name = "credmint",
    version,
    about = "Hardware-backed credential signing appliance"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "CREDMINT_CONFIG",
        default_value = "firmware-config/credmint.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create token, keys, CA certificate and ledger genesis (idempotent).
    Init {
        /// Mark a new ledger as a benchmark ledger (a throwaway appliance that
        /// `bench seed` may fill with synthetic events). Never on a real appliance.
        /// `CREDMINT_BENCHMARK_LEDGER=true` does the same, for benchmark scripts that run a
        /// plain `credmint init` (the side-by-side harness).
        #[arg(long, env = "CREDMINT_BENCHMARK_LEDGER")]
        benchmark: bool,
        /// Intermediate CA mode: write a PKCS#10 request for the HSM CA key to this file
        /// instead of self-signing a root; `serve` refuses until `credmint ca import`.
        #[arg(long, value_name = "OUT.csr")]
        ca_csr: Option<PathBuf>,
    },
    /// The CA certificate (intermediate CA mode).
    #[command(subcommand)]
    Ca(CaCommand),
    /// Serve HTTPS until SIGTERM/SIGINT.
    Serve,
    /// Measure signing and ledger throughput (use a release build).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage integrations on a running appliance (operator certificate over HTTPS).
    #[command(subcommand)]
    Integration(IntegrationCommand),
    /// Inventory of integrations: owners, class, live credentials, review state, flags.
    #[command(subcommand)]
    Integrations(governance::IntegrationsCommand),
    /// Create a one-time enrollment token for an integration; printed once.
    Enroll {
        /// Integration name.
        name: String,
        /// Token lifetime in seconds (at most 3600).
        #[arg(long, default_value_t = 900)]
        ttl: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// ACME: External Account Binding keys for an integration's ACME clients.
    #[command(subcommand)]
    Acme(AcmeCommand),
    /// Issue an operator certificate for another operator's CSR.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Ledger maintenance: export the audit bundle.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Key management on a running appliance: rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ask the local listener's /healthz (trusting data_dir/ca.pem); exit 0 when healthy,
    /// 1 when degraded or not answering. For container HEALTHCHECKs and probes.
    Health {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Read-only monitoring tokens for scrapers (Prometheus) and the console.
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Revoke a certificate (by hex serial) or a token (by jti) as an operator.
    Revoke {
        /// Certificate serial (hex, colons allowed) or token jti.
        id: String,
        /// RFC 5280 reason: keyCompromise, superseded, cessationOfOperation,
        /// affiliationChanged, privilegeWithdrawn, unspecified.
        #[arg(long)]
        reason: String,
        /// Say what ID names when it could be either (a 22-character hex string).
        #[arg(long, value_enum)]
        kind: Option<credentials::Kind>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Public status of a certificate (hex serial) or token (jti), with its ledger proof.
    Status {
        /// Certificate serial (hex, colons allowed) or token jti.
        id: String,
        /// Say what ID names when it could be either (a 22-character hex string).
        #[arg(long, value_enum)]
        kind: Option<credentials::Kind>,
        /// Base URL (default: the config's public URL).
        #[arg(long)]
        url: Option<String>,
    },
    /// Workload: renew its certificate over mTLS with the current one (same key); needs
    /// no appliance config.
    Renew {
        #[command(flatten)]
        conn: credentials::WorkloadConn,
        /// Lifetime of the new certificate in seconds (default: the integration's cap).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Where the new chain is written (default: over --cert).
        #[arg(long, value_name = "PEM")]
        out: Option<PathBuf>,
    },
    /// Workload: the agent. Enrolls once with the token its config names, then keeps a
    /// certificate fresh in files until SIGTERM; `agent run -- CMD` runs one job with a
    /// credential revoked when it exits. Needs no appliance config.
    Agent {
        /// The agent's configuration file (not the appliance's).
        #[arg(
            short = 'c',
            long = "agent-config",
            env = "CREDMINT_AGENT_CONFIG",
            value_name = "TOML"
        )]
        file: PathBuf,
        #[command(subcommand)]
        mode: Option<AgentMode>,
    },
    /// Workload: mint a JWT over mTLS with its certificate; prints the token alone.
    Token {
        #[command(flatten)]
        conn: credentials::WorkloadConn,
        #[command(flatten)]
        request: crate::wire::TokenRequest,
        /// Print the whole JSON answer (token, jti, expires_at, ledger_index).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentMode {
    /// Job mode: run CMD with a fresh credential (paths in CREDMINT_CERT_FILE,
    /// CREDMINT_KEY_FILE, CREDMINT_BUNDLE_FILE), revoke it when CMD exits, and exit with
    /// CMD's status.
    Run {
        /// The command and its arguments (after `--`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Rotate the CA, token or ledger key: a new key is generated inside the HSM and
    /// introduced by a ledger event signed by the old and the new key.
    Rotate {
        /// Which key: ca, token or ledger.
        #[arg(value_parser = ["ca", "token", "ledger"])]
        role: String,
        /// Why (logged by the appliance).
        #[arg(long, default_value = "scheduled rotation")]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Install the CA certificate an enterprise root signed for the CSR of `init
    /// --ca-csr` (appliance stopped). Refused unless it certifies the HSM CA key, is a CA
    /// certificate with keyCertSign, and verifies through --chain up to a self-signed root.
    Import {
        /// The CA certificate (PEM or DER).
        cert: PathBuf,
        /// Its issuers, nearest first, ending with the self-signed root (PEM).
        #[arg(long, value_name = "ISSUER-CHAIN.pem")]
        chain: PathBuf,
    },
    /// Intermediate CA mode, appliance stopped: generate the next CA key in the HSM and
    /// write its CSR; the next `ca import` of its certificate rotates to it.
    Rotate {
        /// Where to write the PKCS#10 request.
        #[arg(long, value_name = "OUT.csr")]
        csr: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Write the self-contained audit bundle (records, checkpoints, key history) to OUT.
    /// Streams from the running appliance; `--offline` reads the ledger file directly
    /// (appliance stopped: its final checkpoint covers everything).
    Export {
        /// Bundle file to write (its directory must exist).
        #[arg(long)]
        out: PathBuf,
        /// Read the ledger file directly (appliance stopped) instead of over HTTPS.
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

/// How the CLI reaches a running appliance.
#[derive(Debug, clap::Args)]
pub struct Conn {
    /// Base URL (default: the config's public URL).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Act as this init operator (its `data_dir/operator-<NAME>.pem` and key), e.g. the
    /// second operator approving a request (default: the first init operator).
    #[arg(long = "as", value_name = "OPERATOR", global = true)]
    pub operator: Option<String>,
}

impl Conn {
    /// Where to connect and with which operator identity.
    pub fn target(&self, cfg: &Config) -> Target {
        let mut target = Target::from_config(cfg, self.url.clone());
        if let Some(name) = &self.operator {
            (target.cert, target.key) = cfg.operator_paths(name);
        }
        target
    }
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    registration: Registration,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Register a new integration (an owned non-human identity).
    Register(Box<RegisterArgs>),
    /// List integrations.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one integration.
    Show {
        /// Integration name.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Suspend an integration (no issuance until resumed).
    Suspend {
        /// Integration name.
        name: String,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Resume a suspended integration.
    Resume {
        /// Integration name.
        name: String,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
    #[command(flatten)]
    Governance(governance::GovernanceCommand),
}

/// `credmint acme ...`.
#[derive(Debug, Subcommand)]
pub enum AcmeCommand {
    /// Create an External Account Binding key for an integration: give the printed kid
    /// and HMAC key to its ACME client (certbot --eab-kid/--eab-hmac-key, lego
    /// --eab --kid/--hmac). Shown once; binds one account.
    Eab {
        /// Integration name.
        name: String,
        /// Lifetime in seconds (default `[acme] eab_ttl_secs`, at most 30 days).
        #[arg(long)]
        ttl: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Deactivate an ACME account for good (lost or compromised client): a ledger event;
    /// its certificates stay valid until revoked.
    Deactivate {
        /// Account id: the last segment of its URL, the `acme:` actor in the ledger.
        account: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Request operator NAME for the key of a PEM CSR file (a second, independent
    /// operator approves it); for your own name, renews your certificate into OUT.
    Add {
        /// Operator name (a-z, 0-9, '-').
        name: String,
        /// PEM CSR file of the new operator's key.
        #[arg(long)]
        csr: PathBuf,
        /// Ticket under which the operator is let in.
        #[arg(long)]
        approval_ref: String,
        /// Where a renewed certificate chain is written.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Operator requests awaiting approval.
    Requests {
        #[command(flatten)]
        conn: Conn,
    },
    /// Approve the operator request at ledger index INDEX; writes the new operator's
    /// certificate chain to OUT (hand it to the new operator, who holds the key).
    Approve {
        /// Ledger index of the operator request (see `operator requests`).
        index: u64,
        /// Where the new operator's certificate chain is written.
        #[arg(long)]
        out: PathBuf,
        /// Ticket under which you approve (default: the request's).
        #[arg(long)]
        approval_ref: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// HSM signatures/s through the pool and in a bare C_Sign loop.
    Hsm {
        /// Duration of each measurement, in seconds.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Thread counts to measure with, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
        threads: Vec<usize>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Certificates issued/s end to end over HTTPS against a running appliance.
    Issue {
        /// Duration of the measurement, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Renewals in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Print the figure as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// ACME certificates/s end to end (newOrder, finalize, download) against a running
    /// appliance, one account per connection, pre-authorized names.
    Acme {
        /// Duration of the measurement, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Accounts ordering at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Print the figure as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Append N synthetic issuance events to the (stopped) benchmark appliance's ledger,
    /// for status/OCSP load tests on a realistically sized ledger. Refuses any ledger not
    /// made by `credmint init --benchmark` (exit 23).
    Seed {
        /// Synthetic certificates to append (count).
        #[arg(long, default_value_t = 100_000)]
        certs: u64,
        /// Write the seeded serials (hex, one per line) here, e.g. for a wrk script.
        #[arg(long)]
        serials_out: Option<PathBuf>,
    },
    /// Durable ledger appends/s, single events and batches.
    Ledger {
        /// Events appended one commit each (count).
        #[arg(long, default_value_t = 3000)]
        single: u64,
        /// Events appended in batches (count).
        #[arg(long, default_value_t = 200_000)]
        batched: u64,
        /// Events per batch (count).
        #[arg(long, default_value_t = 1000)]
        batch: u64,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Any failure a verb can report, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error("ledger: {0}")]
    Ledger(#[from] credmint_ledger::StoreError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A local file or directory the verb reads or writes (exit 4; names the path).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `bench seed` into a ledger not created for benchmarking (exit 23).
    #[error("{0}")]
    NotBenchmarkLedger(String),
    /// `credmint health`: degraded or not answering (exit 1).
    #[error("appliance unhealthy")]
    Unhealthy,
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// Job mode's command exited with this code (not an error of credmint's).
    #[error("job exited with {0}")]
    JobExit(i32),
    #[error("{0}")]
    Other(String),
}

fn hsm_exit(e: &HsmError) -> i32 {
    match e {
        HsmError::ModuleLoad { .. } => 10,
        HsmError::TokenNotFound { .. } => 11,
        HsmError::WrongPin { .. } => 12,
        HsmError::PinLocked { .. } => 13,
        HsmError::KeyNotFound { .. } | HsmError::KeyMismatch { .. } => 14,
        HsmError::Pin(_) => 16,
        _ => 15,
    }
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_)
            | CliError::Serve(ServeError::KeyConfig(_))
            | CliError::Init(InitError::KeyConfig(_)) => 3,
            CliError::Io { .. }
            | CliError::Init(InitError::Io { .. })
            | CliError::Init(InitError::SoftHsm(_))
            | CliError::Init(InitError::UnsafeDataDir { .. })
            | CliError::Serve(ServeError::Init(InitError::UnsafeDataDir { .. }))
            | CliError::Serve(ServeError::Init(InitError::SoftHsm(_))) => 4,
            CliError::NotBenchmarkLedger(_) => 23,
            CliError::Hsm(e)
            | CliError::Init(InitError::Hsm(e))
            | CliError::Serve(ServeError::Hsm(e))
            | CliError::Serve(ServeError::Init(InitError::Hsm(e))) => hsm_exit(e),
            CliError::Init(InitError::Secret(_)) => 16,
            CliError::Init(InitError::Ledger(_))
            | CliError::Serve(ServeError::Ledger(_))
            | CliError::Serve(ServeError::NotInitialized(_))
            | CliError::Ledger(_) => 20,
            CliError::Init(InitError::CaImport(_)) => 24,
            CliError::Serve(ServeError::Init(InitError::CaImport(_))) => 24,
            CliError::Init(InitError::Ca(_))
            | CliError::Serve(ServeError::Ca(_))
            | CliError::Serve(ServeError::Tls(_)) => 21,
            CliError::Init(InitError::ForeignLedger { .. }) => 22,
            CliError::Client(e) | CliError::Agent(AgentError::Client(e)) => client_exit(e),
            CliError::Agent(AgentError::Config(_)) => 3,
            CliError::Agent(AgentError::Io { .. }) => 4,
            CliError::Agent(AgentError::Token(_)) => 16,
            CliError::Agent(AgentError::NoCredential(_)) => 31,
            CliError::JobExit(code) => *code,
            _ => 1,
        }
    }
}

fn client_exit(e: &ClientError) -> i32 {
    match e {
        ClientError::Read { .. } => 4,
        ClientError::Refused { status, .. } if *status < 500 => 31,
        ClientError::Refused { .. } | ClientError::Decode { .. } => 32,
        _ => 30,
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    // The workload verbs run where no appliance config exists.
    match &cli.command {
        Command::Renew { conn, ttl, out } => {
            let out = out.clone().unwrap_or_else(|| conn.cert.clone());
            return block_on(credentials::renew(conn, *ttl, &out));
        }
        Command::Token {
            conn,
            request,
            json,
        } => return block_on(credentials::token(conn, request, *json)),
        Command::Agent { file, mode } => return agent(file, mode.as_ref()),
        _ => {}
    }
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::Renew { .. } | Command::Token { .. } | Command::Agent { .. } => Ok(()),
        Command::Revoke {
            id,
            reason,
            kind,
            conn,
        } => block_on(credentials::revoke(&cfg, &id, kind, reason, &conn)),
        Command::Status { id, kind, url } => block_on(credentials::status(&cfg, &id, kind, url)),
        Command::Ca(CaCommand::Import { cert, chain }) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|source| CliError::Io {
                    path: p.clone(),
                    source,
                })
            };
            let report = crate::init::import_ca(&cfg, &read(&cert)?, &read(&chain)?)?;
            print_init(&cfg, &report)
        }
        Command::Ca(CaCommand::Rotate { csr }) => {
            crate::init::prepare_environment(&cfg, crate::hsm::token::TokenDir::MustExist)?;
            let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
            let label = crate::rotation::offline::request(&cfg, &hsm, &csr)?;
            println!(
                "created  CA key {label:?} and its request {}",
                csr.display()
            );
            println!("have it signed by the enterprise root, then run `credmint ca import <cert.pem> --chain <issuers.pem>`");
            Ok(())
        }
        Command::Init { benchmark, ca_csr } => {
            let options = crate::init::InitOptions {
                benchmark,
                ca_csr: ca_csr.as_deref(),
            };
            let report = crate::init::run_with(&cfg, options)?;
            if let Some(csr) = &ca_csr {
                if !cfg.ledger.file.exists() {
                    print_steps(&report);
                    println!("have {} signed by the enterprise root (CA extensions), then run `credmint ca import <cert.pem> --chain <issuers.pem>`", csr.display());
                    return Ok(());
                }
            }
            print_init(&cfg, &report)
        }
        Command::Serve => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::Other(e.to_string()))?;
            rt.block_on(crate::serve::run(cfg))?;
            Ok(())
        }
        Command::Bench(bench) => run_bench(&cfg, bench),
        Command::Integration(cmd) => block_on(integration(&cfg, cmd)),
        Command::Monitor(cmd) => block_on(monitor::run(&cfg, cmd)),
        Command::Health { timeout } => block_on(async {
            match health::run(&cfg, timeout).await? {
                true => Ok(()),
                false => Err(CliError::Unhealthy),
            }
        }),
        Command::Integrations(cmd) => block_on(governance::integrations(&cfg, cmd)),
        Command::Ledger(LedgerCommand::Export { out, offline, conn }) => {
            // Before anything is asked of the appliance: the bundle must have somewhere to go.
            check_out_dir(&out)?;
            if offline {
                export_offline(&cfg, &out)
            } else {
                block_on(export_online(&cfg, &out, conn.url))
            }
        }
        Command::Keys(KeysCommand::Rotate { role, reason, conn }) => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let v = op
                .post(
                    &format!("/v1/admin/keys/{role}/rotate"),
                    &ReasonBody { reason },
                )
                .await?;
            print_json(&v);
            Ok(())
        }),
        Command::Acme(AcmeCommand::Eab { name, ttl, conn }) => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let v: crate::acme::eab::EabKey = op
                .post_as(
                    &format!("/v1/admin/integrations/{name}/acme-eab"),
                    &crate::acme::eab::EabRequest { ttl_secs: ttl },
                )
                .await?;
            // The only place the HMAC key is ever shown: stdout, once.
            println!("directory {}", v.directory);
            println!("kid       {}", v.kid);
            println!("hmac_key  {}", v.hmac_key);
            eprintln!(
                "binds one ACME account to {} until {}",
                v.integration, v.expires_at
            );
            Ok(())
        }),
        Command::Acme(AcmeCommand::Deactivate { account, conn }) => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let v = op
                .post(
                    &format!("/v1/admin/acme/accounts/{account}/deactivate"),
                    &serde_json::json!({}),
                )
                .await?;
            print_json(&v);
            Ok(())
        }),
        Command::Enroll { name, ttl, conn } => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let v: EnrollmentToken = op
                .post_as(
                    &format!("/v1/admin/integrations/{name}/enrollments"),
                    &EnrollmentRequest {
                        ttl_secs: Some(ttl),
                    },
                )
                .await?;
            // The only place the token is ever shown: stdout, once.
            println!("{}", v.token);
            eprintln!("expires {}", v.expires_at);
            Ok(())
        }),
        Command::Operator(OperatorCommand::Add {
            name,
            csr,
            approval_ref,
            out,
            conn,
        }) => block_on(async {
            let csr = std::fs::read_to_string(&csr).map_err(|source| CliError::Io {
                path: csr.clone(),
                source,
            })?;
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let request = AddOperator {
                name: name.clone(),
                csr,
                approval_ref,
            };
            let answer = op.post("/v1/admin/operators", &request).await?;
            match (answer.as_str(), out) {
                // A renewal of one's own certificate answers the chain at once.
                (Some(chain), Some(out)) => {
                    write_file(&out, chain)?;
                    println!(
                        "operator certificate for {name} written to {}",
                        out.display()
                    );
                }
                (Some(chain), None) => print!("{chain}"),
                (None, _) => print_json(&answer),
            }
            Ok(())
        }),
        Command::Operator(OperatorCommand::Requests { conn }) => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let v = op.get("/v1/admin/operators/requests").await?;
            print_json(&v);
            Ok(())
        }),
        Command::Operator(OperatorCommand::Approve {
            index,
            out,
            approval_ref,
            conn,
        }) => block_on(async {
            let op = OperatorClient::new(&conn.target(&cfg))?;
            let chain = op
                .post(
                    &format!("/v1/admin/operators/requests/{index}/approve"),
                    &ApproveOperator { approval_ref },
                )
                .await?;
            write_file(&out, chain.as_str().unwrap_or_default())?;
            println!(
                "operator certificate of request {index} written to {}",
                out.display()
            );
            Ok(())
        }),
    }
}

fn write_file(path: &std::path::Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

async fn export_online(
    cfg: &Config,
    out: &std::path::Path,
    url: Option<String>,
) -> Result<(), CliError> {
    let op = OperatorClient::new(&Target::from_config(cfg, url))?;
    let n = op
        .download("/v1/admin/ledger/export", out)
        .await
        .map_err(|e| match e {
            ClientError::Read { path, source } => CliError::Io { path, source },
            other => CliError::Client(other),
        })?;
    println!("exported {n} bytes to {}", out.display());
    Ok(())
}

fn export_offline(cfg: &Config, out: &std::path::Path) -> Result<(), CliError> {
    let ledger = credmint_ledger::Ledger::open(&cfg.ledger.file)?;
    let s = credmint_ledger::export::export_to_file(&ledger, out)
        .map_err(|e| CliError::Other(format!("{}: {e}", out.display())))?;
    println!(
        "exported {} records, {} checkpoints to {} ({} unsigned records left out)",
        s.records,
        s.checkpoints,
        out.display(),
        s.unsigned_tail
    );
    Ok(())
}

/// The directory `out` is to be written into must exist (exit 4 naming it otherwise).
fn check_out_dir(out: &std::path::Path) -> Result<(), CliError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(CliError::Io {
        path: out.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "cannot write here: directory {} does not exist",
                dir.display()
            ),
        ),
    })
}

fn block_on<F: std::future::Future<Output = Result<(), CliError>>>(f: F) -> Result<(), CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Other(e.to_string()))?
        .block_on(f)
}

/// `credmint agent`: the daemon, or one job.
fn agent(file: &std::path::Path, mode: Option<&AgentMode>) -> Result<(), CliError> {
    let cfg = crate::agent::config::AgentConfig::load(file).map_err(AgentError::from)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| CliError::Other(e.to_string()))?;
    match mode {
        None => Ok(runtime.block_on(crate::agent::serve(cfg))?),
        Some(AgentMode::Run { command }) => {
            match runtime.block_on(crate::agent::job::run(cfg, command))? {
                0 => Ok(()),
                code => Err(CliError::JobExit(code)),
            }
        }
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn integration(cfg: &Config, cmd: IntegrationCommand) -> Result<(), CliError> {
    let (op, result) = match &cmd {
        IntegrationCommand::Register(args) => {
            let op = OperatorClient::new(&args.conn.target(cfg))?;
            let r = op.post("/v1/admin/integrations", &args.registration).await;
            (op, r)
        }
        IntegrationCommand::List { conn } => {
            let op = OperatorClient::new(&conn.target(cfg))?;
            let r = op.get("/v1/admin/integrations").await;
            (op, r)
        }
        IntegrationCommand::Show { name, conn } => {
            let op = OperatorClient::new(&conn.target(cfg))?;
            let r = op.get(&format!("/v1/admin/integrations/{name}")).await;
            (op, r)
        }
        IntegrationCommand::Governance(g) => return governance::run(cfg, g).await,
        IntegrationCommand::Suspend { name, reason, conn }
        | IntegrationCommand::Resume { name, reason, conn } => {
            let verb = if matches!(cmd, IntegrationCommand::Suspend { .. }) {
                "suspend"
            } else {
                "resume"
            };
            let op = OperatorClient::new(&conn.target(cfg))?;
            let body = ReasonBody {
                reason: reason.clone(),
            };
            let r = op
                .post(&format!("/v1/admin/integrations/{name}/{verb}"), &body)
                .await;
            (op, r)
        }
    };
    drop(op);
    print_json(&result?);
    Ok(())
}

/// Runs an end-to-end benchmark against the appliance `conn` names and prints its figure.
fn http_bench<F, Fut, T>(cfg: &Config, conn: &Conn, json: bool, bench: F) -> Result<(), CliError>
where
    F: FnOnce(OperatorClient, Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
    T: serde::Serialize + std::fmt::Display,
{
    let target = conn.target(cfg);
    let ca = std::fs::read(&target.ca)
        .map_err(|e| CliError::Other(format!("{}: {e}", target.ca.display())))?;
    let figure = tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Other(e.to_string()))?
        .block_on(async { bench(OperatorClient::new(&target)?, ca).await })?;
    if json {
        print_json(&serde_json::to_value(&figure).unwrap_or_default());
    } else {
        println!("{figure}");
    }
    Ok(())
}

fn run_bench(cfg: &Config, bench: BenchCommand) -> Result<(), CliError> {
    let (figures, json) = match bench {
        BenchCommand::Hsm {
            seconds,
            threads,
            json,
        } => {
            crate::init::prepare_environment(cfg, crate::hsm::token::TokenDir::MustExist)?;
            let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
            let keys = KeySet::load(hsm, cfg)?;
            let duration = Duration::from_secs_f64(seconds);
            let mut figures = crate::bench::hsm(&keys.ca, &threads, duration)?;
            if keys.ledger.algorithm() != keys.ca.algorithm() {
                figures.extend(crate::bench::hsm(&keys.ledger, &threads, duration)?);
            }
            (figures, json)
        }
        BenchCommand::Issue {
            seconds,
            concurrency,
            json,
            conn,
        } => {
            return http_bench(cfg, &conn, json, |op, ca| async move {
                let d = Duration::from_secs_f64(seconds);
                crate::bench::issue::issue(&op, &ca, concurrency, d).await
            });
        }
        BenchCommand::Acme {
            seconds,
            concurrency,
            json,
            conn,
        } => {
            return http_bench(cfg, &conn, json, |op, ca| async move {
                let d = Duration::from_secs_f64(seconds);
                crate::bench::acme::acme(&op, &ca, concurrency, d).await
            });
        }
        BenchCommand::Seed { certs, serials_out } => {
            let ledger = credmint_ledger::Ledger::open(&cfg.ledger.file)?;
            let path = cfg.ledger.file.display().to_string();
            let (serials, size) =
                crate::bench::seed::seed(&ledger, &path, certs, &cfg.identity.trust_domain)
                    .map_err(|e| match e {
                        crate::bench::seed::SeedError::NotBenchmark { .. } => {
                            CliError::NotBenchmarkLedger(e.to_string())
                        }
                        other => CliError::Other(other.to_string()),
                    })?;
            if let Some(path) = serials_out {
                std::fs::write(&path, serials.join("\n") + "\n")
                    .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
            }
            let sample = serials.first().cloned().unwrap_or_default();
            println!("seeded {certs} certificates; ledger size {size}; sample serial {sample}");
            return Ok(());
        }
        BenchCommand::Ledger {
            single,
            batched,
            batch,
            json,
        } => {
            std::fs::create_dir_all(&cfg.data_dir).map_err(|e| CliError::Other(e.to_string()))?;
            let figures = vec![
                crate::bench::ledger(&cfg.data_dir, single, 1)?,
                crate::bench::ledger(&cfg.data_dir, batched, batch)?,
            ];
            (figures, json)
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&figures).map_err(|e| CliError::Other(e.to_string()))?
        );
    } else {
        for f in figures {
            println!("{f}");
        }
    }
    Ok(())
}

fn print_steps(report: &crate::init::InitReport) {
    for step in &report.steps {
        let verb = if step.created { "created" } else { "exists " };
        println!("{verb}  {}", step.what);
    }
}

/// The init report, and the genesis ledger key auditors pin.
fn print_init(cfg: &Config, report: &crate::init::InitReport) -> Result<(), CliError> {
    print_steps(report);
    if report.unchanged() {
        println!("already initialised: nothing changed");
    } else {
        println!("initialised: {}", cfg.data_dir.display());
    }
    // Auditors pin this out of band (credmint-audit --ledger-key).
    let ledger = credmint_ledger::Ledger::open(&cfg.ledger.file)?;
    let genesis_key = match ledger.record(0)?.map(|r| r.event) {
        Some(credmint_ledger::Event::Genesis(g)) => {
            g.ledger_key().map_err(|e| CliError::Other(e.into()))?
        }
        _ => return Err(CliError::Other("ledger has no genesis record".into())),
    };
    println!(
        "ledger key: {}",
        credmint_ledger::note::verifier_key_string(ledger.origin(), &genesis_key)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and argument of every verb says what it is (`--help`).
    #[test]
    fn every_flag_has_help() {
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "credmint".into(), &mut missing);
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    /// clap's own consistency checks (conflicts name real arguments, no duplicate flags).
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn audience_flags_map_to_the_change_body() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let args = ["credmint", "integration", "change", "ci", "--reason", "r"];
            super::Cli::try_parse_from(args.iter().chain(extra))
        };
        let body = |extra: &[&str]| match parse(extra).unwrap().command {
            super::Command::Integration(super::IntegrationCommand::Governance(
                crate::cli::governance::GovernanceCommand::Change(c),
            )) => c.body,
            other => panic!("{other:?}"),
        };
        let b = body(&["--audience", "b", "--audience", "a"]);
        assert_eq!(b.audiences, Some(vec!["b".to_string(), "a".to_string()]));
        assert_eq!(b.any_audience, None);
        assert_eq!(body(&["--any-audience"]).any_audience, Some(true));
        assert!(parse(&["--audience", "a", "--any-audience"]).is_err());
        assert!(parse(&["--no-audiences", "--audience", "a"]).is_err());
    }
}
