//! `credmint-audit`: the offline auditor's command line. All logic lives in
//! `credmint_ledger::audit`; see `credmint-audit --help` and FORMAT.md §14.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(credmint_ledger::audit::cli::main())
}
