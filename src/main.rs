use std::process::ExitCode;

use clap::Parser;
use ssm_operator::commands::{Cli, Command};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        // stdout is the SsmParameters, what did not convert goes to stderr.
        Command::Convert(args) => return ssm_operator::commands::convert::run(args),
        Command::Crd { kind } => print!("{}", ssm_operator::api::crd_yaml(kind)?),
        // No telemetry: stdout is the policy, notes go to stderr.
        Command::Policy(args) => ssm_operator::commands::policy::run(args).await?,
        Command::Check(args) => ssm_operator::commands::check::run(args).await?,
        Command::Run(args) => {
            ssm_operator::telemetry::logs::init(args.log_format, &args.log_level);
            ssm_operator::runtime::run((*args).settings()?).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
