use clap::Parser;

fn main() {
    credmint::telemetry::init();
    let cli = credmint::cli::Cli::parse();
    if let Err(e) = credmint::cli::run(cli) {
        if let credmint::cli::CliError::JobExit(code) = e {
            // `agent run`: the job's own status, passed through without comment.
            std::process::exit(code);
        }
        let code = e.exit_code();
        tracing::error!(exit_code = code, "{e}");
        eprintln!("credmint: error: {e}");
        std::process::exit(code);
    }
}
