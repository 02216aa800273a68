//! The scale benchmark of ssm-operator: `make bench` (see bench/README.md).
//!
//! For each size and shape it starts the operator's release build on N
//! SecureStrings and their SsmParameters, on the real control plane and the
//! emulator at AWS's default SSM quota, and prints what each phase cost
//! beside its floor. Numbers to read, not assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod changes;
mod measure;
mod report;
mod run;
mod track;
mod world;

use world::Variant;

const USAGE: &str = "usage: ssm-operator-bench [--parameters 1000,10000] [--variants single,ten,path] [--unrelated-secrets N] [--operator-args ARGS] [--cold-only]

  --parameters         SecureStrings per run, comma-separated (default 1000,10000)
  --variants           shapes of the SsmParameters: single (one parameter each),
                       ten (ten each), path (a path of 250 each); default single
  --unrelated-secrets  10 KB Secrets no SsmParameter refers to, beside a run's
                       objects (default: as many as parameters, single runs only)
  --operator-args      more `ssm-operator run` flags, space-separated
                       (e.g. \"--kube-api-qps 500 --batch-window 1000ms\")
  --cold-only          stop each run after its cold start (for profiling it)
  --change-events C    instead: C changes of distinct parameters over N
                       single-parameter objects refreshed hourly, read from
                       change events (latency PutParameter → Secret, cost)
  --change-rate R      changes per second of that run (default 4)";

struct Args {
    parameters: Vec<usize>,
    variants: Vec<Variant>,
    unrelated: Option<usize>,
    operator_args: Vec<String>,
    cold_only: bool,
    change_events: Option<usize>,
    change_rate: f64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        parameters: vec![1000, 10_000],
        variants: vec![Variant::Single],
        unrelated: None,
        operator_args: Vec::new(),
        cold_only: false,
        change_events: None,
        change_rate: 4.0,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || {
            given
                .next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--parameters" => {
                args.parameters = value()?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            "--variants" => {
                args.variants = value()?
                    .split(',')
                    .map(|v| Variant::parse(v.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--unrelated-secrets" => args.unrelated = Some(value()?.parse()?),
            "--operator-args" => {
                args.operator_args = value()?.split_whitespace().map(str::to_owned).collect();
            }
            "--cold-only" => args.cold_only = true,
            "--change-events" => args.change_events = Some(value()?.parse()?),
            "--change-rate" => args.change_rate = value()?.parse()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    report::machine(&args.operator_args);
    if let Some(changes) = args.change_events {
        for &objects in &args.parameters {
            let measured =
                changes::run(objects, changes, args.change_rate, &args.operator_args).await;
            report::print_changes(&measured);
        }
        return Ok(());
    }
    for &variant in &args.variants {
        for &parameters in &args.parameters {
            let unrelated = match (args.unrelated, variant) {
                (Some(n), _) => n,
                (None, Variant::Single) => parameters,
                (None, _) => 0,
            };
            let measured = run::run(
                variant,
                parameters,
                unrelated,
                &args.operator_args,
                args.cold_only,
            )
            .await;
            report::print(&measured);
        }
    }
    Ok(())
}
