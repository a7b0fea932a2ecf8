//! Command line: verbs, and the one place that maps errors to exit codes.
//!
//! Exit codes (stable, documented in README): 0 ok, 2 usage, 3 configuration,
//! 10 PKCS#11 module cannot be loaded, 11 token not found, 12 wrong PIN, 13 PIN locked,
//! 14 key missing or mismatched, 15 other HSM failure, 16 PIN source unreadable,
//! 20 ledger error, 21 CA/TLS error, 22 refusing to fork an existing ledger, 1 anything else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::hsm::{Hsm, HsmError};
use crate::init::InitError;
use crate::keyset::KeySet;
use crate::serve::ServeError;

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
    Init,
    /// Serve HTTPS until SIGTERM/SIGINT.
    Serve,
    /// Measure signing and ledger throughput (use a release build).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// HSM signatures/s through the pool and in a bare C_Sign loop.
    Hsm {
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
        threads: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Durable ledger appends/s, single events and batches.
    Ledger {
        #[arg(long, default_value_t = 3000)]
        single: u64,
        #[arg(long, default_value_t = 200_000)]
        batched: u64,
        #[arg(long, default_value_t = 1000)]
        batch: u64,
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
            CliError::Config(_) => 3,
            CliError::Hsm(e)
            | CliError::Init(InitError::Hsm(e))
            | CliError::Serve(ServeError::Hsm(e))
            | CliError::Serve(ServeError::Init(InitError::Hsm(e))) => hsm_exit(e),
            CliError::Init(InitError::Secret(_)) => 16,
            CliError::Init(InitError::Ledger(_))
            | CliError::Serve(ServeError::Ledger(_))
            | CliError::Serve(ServeError::NotInitialized(_))
            | CliError::Ledger(_) => 20,
            CliError::Init(InitError::Ca(_))
            | CliError::Serve(ServeError::Ca(_))
            | CliError::Serve(ServeError::Tls(_)) => 21,
            CliError::Init(InitError::ForeignLedger { .. }) => 22,
            _ => 1,
        }
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let cfg = Config::load(&cli.config)?;
    match cli.command {
        Command::Init => {
            let report = crate::init::run(&cfg)?;
            for step in &report.steps {
                let verb = if step.created { "created" } else { "exists " };
                println!("{verb}  {}", step.what);
            }
            if report.unchanged() {
                println!("already initialised: nothing changed");
            } else {
                println!("initialised: {}", cfg.data_dir.display());
            }
            Ok(())
        }
        Command::Serve => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::Other(e.to_string()))?;
            rt.block_on(crate::serve::run(cfg))?;
            Ok(())
        }
        Command::Bench(bench) => run_bench(&cfg, bench),
    }
}

fn run_bench(cfg: &Config, bench: BenchCommand) -> Result<(), CliError> {
    let (figures, json) = match bench {
        BenchCommand::Hsm {
            seconds,
            threads,
            json,
        } => {
            crate::init::prepare_environment(cfg)?;
            let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
            let keys = KeySet::load(hsm, cfg)?;
            let duration = Duration::from_secs_f64(seconds);
            let mut figures = crate::bench::hsm(&keys.ca, &threads, duration)?;
            if keys.ledger.algorithm() != keys.ca.algorithm() {
                figures.extend(crate::bench::hsm(&keys.ledger, &threads, duration)?);
            }
            (figures, json)
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
