use clap::Parser;
use ssm_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => print!("{}", ssm_operator::crd_yaml()?),
        Command::Run(args) => {
            ssm_operator::telemetry::init(args.log_format, &args.log_level);
            ssm_operator::run(args).await?;
        }
    }
    Ok(())
}
