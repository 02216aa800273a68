use clap::Parser;
use ssm_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", ssm_operator::crd_yaml()?),
        // No telemetry: stdout is the policy, notes go to stderr.
        Command::Policy(args) => ssm_operator::policy::run(args).await?,
        Command::Check(args) => ssm_operator::check::run(args).await?,
        Command::Run(args) => {
            ssm_operator::telemetry::init(args.log_format, &args.log_level);
            ssm_operator::run(*args).await?;
        }
    }
    Ok(())
}
