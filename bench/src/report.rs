//! The table a run prints: each figure beside its floor (or goal) and their
//! ratio.

use std::time::Duration;

use crate::measure::PROCESSES;
use crate::run::{PROBES, Phase, Report};
use crate::world::SETUP_CONCURRENCY;

/// Prints the machine the numbers come from, and the operator's flags.
pub fn machine(operator_args: &[String]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or_default();
    println!(
        "machine: {cores} cores, {memory:.0} GiB; emulator SSM quota 40 reads/s (AWS's default)"
    );
    match operator_args.is_empty() {
        true => println!("operator: release build, default flags"),
        false => println!("operator: release build, {}", operator_args.join(" ")),
    }
}

struct Row {
    figure: String,
    measured: String,
    floor: String,
    ratio: String,
}

fn row(figure: impl Into<String>, measured: f64, floor: f64) -> Row {
    let ratio = match floor > 0.0 {
        true => format!("{:.2}", measured / floor),
        false if measured == 0.0 => "1.00".to_owned(),
        false => "over".to_owned(),
    };
    Row {
        figure: figure.into(),
        measured: format!("{measured}"),
        floor: format!("{floor}"),
        ratio,
    }
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn time_row(figure: impl Into<String>, took: Option<Duration>, floor: Option<Duration>) -> Row {
    let ratio = match (took, floor) {
        (Some(t), Some(f)) if !f.is_zero() => format!("{:.2}", t.as_secs_f64() / f.as_secs_f64()),
        _ => String::new(),
    };
    Row {
        figure: figure.into(),
        measured: seconds(took),
        floor: floor.map_or_else(String::new, |f| seconds(Some(f))),
        ratio,
    }
}

/// A latency well under a second, in milliseconds.
fn millis_row(figure: &str, took: Option<Duration>, goal: Option<Duration>) -> Row {
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let ratio = match (took, goal) {
        (Some(t), Some(g)) => format!("{:.3}", t.as_secs_f64() / g.as_secs_f64()),
        _ => String::new(),
    };
    Row {
        figure: figure.to_owned(),
        measured: took.map_or_else(|| "—".to_owned(), ms),
        floor: goal.map_or_else(String::new, ms),
        ratio,
    }
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1).copied()
}

/// The floors of one phase of `r`.
struct Floors {
    reads: f64,
    decrypts: f64,
    sts: f64,
    /// Each object's Secret, status, Event, finalizer written once.
    secrets: f64,
    status: f64,
    events: f64,
    finalizers: f64,
}

/// The new objects a phase applied (one parameter each) are first syncs, in
/// the floors too; those of the cold start refresh and restart with the rest.
fn floors(r: &Report, phase: &Phase) -> Floors {
    let new = phase.probes_applied as f64;
    let objects = r.objects as f64;
    // GetParameters takes ten names, GetParametersByPath answers ten a page.
    let reads = |parameters: usize| parameters.div_ceil(10) as f64;
    let parameters = r.parameters as f64;
    let none = Floors {
        reads: reads(r.parameters + PROBES),
        decrypts: 0.0,
        sts: 0.0,
        secrets: 0.0,
        status: 0.0,
        events: 0.0,
        finalizers: 0.0,
    };
    let first_syncs = Floors {
        decrypts: new,
        secrets: new,
        status: new,
        events: new,
        finalizers: new,
        ..none
    };
    match phase.name {
        "cold start" => Floors {
            reads: reads(r.parameters + PROBES),
            decrypts: parameters + new,
            sts: 1.0,
            secrets: objects + new,
            status: objects + new,
            events: objects + new,
            finalizers: objects + new,
        },
        "full refresh" => Floors {
            reads: reads(r.parameters + PROBES) + reads(PROBES),
            ..first_syncs
        },
        "spec change" => Floors {
            reads: reads(r.parameters),
            decrypts: parameters,
            secrets: objects,
            status: objects,
            ..none
        },
        "restart" => Floors {
            reads: reads(r.parameters + 2 * PROBES),
            sts: 1.0,
            ..none
        },
        _ => none,
    }
}

pub fn print(r: &Report) {
    println!(
        "\n## {} SecureStrings, {} SsmParameters ({}), {} unrelated 10 KB Secrets",
        r.parameters,
        r.objects,
        r.variant.name(),
        r.unrelated
    );
    let quota = Duration::from_secs_f64(r.parameters.div_ceil(10) as f64 / 40.0);
    let (created, took) = r.api_server_creates;
    let create_rate = created as f64 / took.as_secs_f64().max(0.001);
    let mut rows = vec![Row {
        figure: format!(
            "API server: SsmParameter creates in the set-up ({SETUP_CONCURRENCY} at once)"
        ),
        measured: format!("{create_rate:.0}/s"),
        floor: String::new(),
        ratio: String::new(),
    }];
    for phase in &r.phases {
        let f = floors(r, phase);
        let d = &phase.delta;
        let p = |figure: &str| format!("{}: {figure}", phase.name);
        match phase.name {
            "cold start" | "spec change" => {
                rows.push(time_row(p("all Secrets current"), phase.took, Some(quota)));
                rows.push(time_row(p("first Secret current"), phase.first, None));
                rows.push(time_row(p("half the Secrets current"), phase.half, None));
                rows.push(time_row(p("90% of the Secrets current"), phase.most, None));
                if phase.took.is_none() {
                    rows.push(Row {
                        figure: p("current within the deadline"),
                        measured: format!("{} of {}", phase.done.0, phase.done.1),
                        floor: String::new(),
                        ratio: String::new(),
                    });
                }
            }
            "full refresh" => rows.push(time_row(
                p("every object refreshed, after the cold start"),
                phase.took,
                None,
            )),
            _ => rows.push(time_row(p("every object reconciled"), phase.took, None)),
        }
        rows.push(row(p("SSM reads"), d.ssm_reads() as f64, f.reads));
        for op in [
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
            "ssm:GetParameter",
        ] {
            let n = d.calls(op);
            if n > 0 {
                rows.push(Row {
                    figure: p(&format!("  {op}")),
                    measured: n.to_string(),
                    floor: String::new(),
                    ratio: String::new(),
                });
            }
        }
        rows.push(row(p("SSM reads throttled"), d.throttled() as f64, 0.0));
        rows.push(row(
            p("KMS decrypts"),
            d.calls_with("kms:Decrypt", "ok") as f64,
            f.decrypts,
        ));
        rows.push(row(p("STS calls"), d.sts() as f64, f.sts));
        for (resource, floor) in [
            ("secrets", f.secrets),
            ("ssmparameters/status", f.status),
            ("events", f.events),
            ("ssmparameters", f.finalizers),
        ] {
            rows.push(row(
                p(&format!("writes of {resource}")),
                d.written(resource) as f64,
                floor,
            ));
        }
        for (resource, n) in &d.writes {
            let listed = ["secrets", "ssmparameters/status", "events", "ssmparameters"];
            if !listed.contains(&resource.as_str()) {
                rows.push(row(p(&format!("writes of {resource}")), *n as f64, 0.0));
            }
        }
        if phase.name == "cold start" {
            let writes: u64 = d.writes.values().sum();
            rows.push(time_row(
                p("its writes at the set-up's create rate"),
                Some(Duration::from_secs_f64(writes as f64 / create_rate)),
                None,
            ));
        }
        rows.push(row(
            p("API server 5xx answers"),
            d.answered("5") as f64,
            0.0,
        ));
        rows.push(row(
            p("API server 429 answers"),
            d.answered("429") as f64,
            0.0,
        ));
        if !phase.probes.is_empty() {
            let goal = Some(Duration::from_secs(5));
            rows.push(time_row(
                p(&format!("new object Ready p50 (of {})", phase.probes.len())),
                percentile(&phase.probes, 50.0),
                goal,
            ));
            rows.push(time_row(
                p("new object Ready p99"),
                percentile(&phase.probes, 99.0),
                goal,
            ));
        }
        rows.push(Row {
            figure: p("operator CPU"),
            measured: format!("{:.1} s", phase.cpu_seconds),
            floor: String::new(),
            ratio: String::new(),
        });
        rows.extend(machine_share(phase, &p));
    }
    let memory = [
        ("peak RSS", Some(r.peak_rss_mib)),
        ("steady RSS", Some(r.steady_rss_mib)),
        ("restart: peak RSS", r.restart_peak_rss_mib),
    ];
    for (figure, mib) in memory.into_iter().filter_map(|(f, m)| Some((f, m?))) {
        rows.push(Row {
            figure: figure.to_owned(),
            measured: format!("{mib:.0} MiB"),
            floor: "64 MiB".to_owned(),
            ratio: format!("{:.2}", mib / 64.0),
        });
    }
    print_rows(rows);
}

fn print_rows(rows: Vec<Row>) {
    println!("\n| figure | measured | floor (goal) | ratio |\n|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.measured, r.floor, r.ratio
        );
    }
}

/// What else ran on the machine during `phase`: the CPU time of each
/// process, and how busy all of them kept the cores (100% is every core all
/// the time: the phase was paced by the machine, not by what waits).
fn machine_share(phase: &Phase, p: &impl Fn(&str) -> String) -> Vec<Row> {
    let d = &phase.delta;
    let mut rows: Vec<Row> = PROCESSES
        .iter()
        .filter(|process| d.cpu_seconds(process) > 0.0)
        .map(|process| Row {
            figure: p(&format!("{process} CPU")),
            measured: format!("{:.1} s", d.cpu_seconds(process)),
            floor: String::new(),
            ratio: String::new(),
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // Only these phases measure their counts over the same span as their time.
    let spans_match = matches!(phase.name, "cold start" | "spec change");
    if let Some(took) = phase.took.filter(|t| spans_match && !t.is_zero()) {
        let all = phase.cpu_seconds + PROCESSES.iter().map(|n| d.cpu_seconds(n)).sum::<f64>();
        rows.push(Row {
            figure: p("CPU of all of them, of the machine's cores"),
            measured: format!("{:.0}%", 100.0 * all / (cores * took.as_secs_f64())),
            floor: String::new(),
            ratio: String::new(),
        });
    }
    rows
}

/// The change-events run: latency from PutParameter to the Secret, and the
/// cost of each change, beside the goals (p99 5 s; one SSM call and one
/// decrypt per change).
pub fn print_changes(c: &crate::changes::Changes) {
    println!(
        "\n## Change events: {} changes of {} single-parameter SsmParameters (refreshInterval 1h), {}/s",
        c.changes, c.objects, c.rate
    );
    let goal = Some(Duration::from_secs(5));
    let arrived = c.latencies.len();
    let changes = c.changes as f64;
    let d = &c.delta;
    let rows = vec![
        row("changes in their Secret", arrived as f64, changes),
        millis_row(
            "PutParameter → Secret p50",
            percentile(&c.latencies, 50.0),
            goal,
        ),
        millis_row(
            "PutParameter → Secret p99",
            percentile(&c.latencies, 99.0),
            goal,
        ),
        millis_row(
            "PutParameter → Secret max",
            c.latencies.last().copied(),
            goal,
        ),
        row("SSM reads (GetParameters)", d.ssm_reads() as f64, changes),
        row("SSM reads throttled", d.throttled() as f64, 0.0),
        row("KMS decrypts", d.calls("kms:Decrypt") as f64, changes),
        row("STS calls", d.sts() as f64, 0.0),
        row("Secret writes", d.written("secrets") as f64, changes),
    ];
    print_rows(rows);
}
