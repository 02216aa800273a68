//! What a phase cost, from the outside: the emulator's call counters, the
//! API server's audit log (the operator's writes) and its own metrics
//! (answers by code), the CPU time of every process of the machine's share
//! (the test environment's, the benchmark's), and the operator process (CPU,
//! memory, reconciles).

use std::collections::BTreeMap;

use kube::Client;
use ssm_operator_testenv::aws::emulator::counters;
use ssm_operator_testenv::operator::{Operator, admin_get, audited_writes, cpu_seconds_of};
use ssm_operator_testenv::{Scenario, env::EnvInfo};

/// Counts at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// AWS calls of the operator's role (and every STS call) by action and
    /// outcome.
    pub aws: BTreeMap<(String, String), u64>,
    /// The operator's writes by resource (`secrets`, `ssmparameters/status`, …).
    pub writes: BTreeMap<String, u64>,
    /// The API server's answers to anyone, by status code.
    pub answers: BTreeMap<String, u64>,
    /// CPU seconds so far, by process (`kube-apiserver`, `etcd`, `AWS
    /// emulator`, …, `benchmark`).
    pub cpu: BTreeMap<String, f64>,
}

/// What happened between two snapshots.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    pub aws: BTreeMap<(String, String), u64>,
    pub writes: BTreeMap<String, u64>,
    pub answers: BTreeMap<String, u64>,
    pub cpu: BTreeMap<String, f64>,
}

impl Snapshot {
    pub async fn take(s: &Scenario, role: &str) -> Self {
        Self {
            aws: aws_calls(s.env, role).await,
            writes: writes(s),
            answers: answers(&s.kube).await,
            cpu: cpu_seconds(s.env),
        }
    }

    pub fn since(&self, before: &Self) -> Delta {
        Delta {
            aws: minus(&self.aws, &before.aws),
            writes: minus(&self.writes, &before.writes),
            answers: minus(&self.answers, &before.answers),
            cpu: (self.cpu.iter())
                .map(|(process, seconds)| {
                    let before = before.cpu.get(process).copied().unwrap_or_default();
                    (process.clone(), seconds - before)
                })
                .collect(),
        }
    }
}

impl Delta {
    /// Calls of `action`, any outcome.
    pub fn calls(&self, action: &str) -> u64 {
        self.aws
            .iter()
            .filter(|((a, _), _)| a == action)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls of `action` that answered `outcome`.
    pub fn calls_with(&self, action: &str, outcome: &str) -> u64 {
        self.aws
            .get(&(action.to_owned(), outcome.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// SSM parameter reads (the three that share the 40/s quota).
    pub fn ssm_reads(&self) -> u64 {
        [
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
        ]
        .iter()
        .map(|a| self.calls(a))
        .sum()
    }

    /// SSM parameter reads AWS throttled.
    pub fn throttled(&self) -> u64 {
        self.aws
            .iter()
            .filter(|((a, o), _)| a.starts_with("ssm:") && o == "ThrottlingException")
            .map(|(_, n)| n)
            .sum()
    }

    /// STS calls of any kind.
    pub fn sts(&self) -> u64 {
        self.aws
            .iter()
            .filter(|((a, _), _)| a.starts_with("sts:"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Answers with a status code of class `class` (`'5'`, …) or `429`.
    pub fn answered(&self, class: &str) -> u64 {
        self.answers
            .iter()
            .filter(|(code, _)| code.starts_with(class))
            .map(|(_, n)| n)
            .sum()
    }

    /// CPU seconds of the processes named `process`.
    pub fn cpu_seconds(&self, process: &str) -> f64 {
        self.cpu.get(process).copied().unwrap_or_default()
    }

    /// The operator's writes of `resource`.
    pub fn written(&self, resource: &str) -> u64 {
        self.writes.get(resource).copied().unwrap_or_default()
    }
}

fn minus<K: Ord + Clone>(after: &BTreeMap<K, u64>, before: &BTreeMap<K, u64>) -> BTreeMap<K, u64> {
    after
        .iter()
        .map(|(k, n)| {
            (
                k.clone(),
                n.saturating_sub(before.get(k).copied().unwrap_or_default()),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn aws_calls(env: &EnvInfo, role: &str) -> BTreeMap<(String, String), u64> {
    let all = counters(env).await.expect("the emulator's counters");
    let mut calls = BTreeMap::new();
    for c in all.counters {
        if c.caller == role || c.action.starts_with("sts:") {
            *calls.entry((c.action, c.outcome)).or_default() += c.count;
        }
    }
    calls
}

fn writes(s: &Scenario) -> BTreeMap<String, u64> {
    let mut writes = BTreeMap::new();
    for w in audited_writes(s.env, &s.namespace) {
        let resource = match w.subresource.is_empty() {
            true => w.resource,
            false => format!("{}/{}", w.resource, w.subresource),
        };
        *writes.entry(resource).or_default() += 1;
    }
    writes
}

/// `apiserver_request_total` summed by code, from the API server's metrics.
async fn answers(kube: &Client) -> BTreeMap<String, u64> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("a request");
    let text = kube
        .request_text(request)
        .await
        .expect("the API server's metrics");
    let mut answers = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let code = labels
            .split(',')
            .find_map(|l| l.strip_prefix("code=\""))
            .map(|c| c.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        let n: f64 = value.trim().parse().unwrap_or_default();
        // Counters of whole requests: the value is an integer.
        *answers.entry(code).or_default() += n as u64;
    }
    answers
}

/// The operator's finished reconciles so far, by its own metrics.
pub async fn reconciles(operator: &Operator) -> u64 {
    let Some((200, text)) = admin_get(&operator.admin, "/metrics").await else {
        return 0;
    };
    text.lines()
        .filter(|l| l.starts_with("ssm_operator_reconciles_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

/// The processes that share the machine with the operator, by the name the
/// report gives them: the test environment's (found by its work directory
/// on their command line) and this benchmark.
pub const PROCESSES: [&str; 5] = [
    "kube-apiserver",
    "etcd",
    "AWS emulator",
    "kube-controller-manager",
    "benchmark",
];

fn cpu_seconds(env: &EnvInfo) -> BTreeMap<String, f64> {
    let workdir = env.workdir.to_string_lossy().into_owned();
    let mut seconds = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return seconds;
    };
    let me = std::process::id().to_string();
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let name = if pid == me {
            "benchmark"
        } else if !argv.iter().any(|a| a.contains(&workdir)) {
            continue;
        } else if argv.iter().any(|a| a.ends_with("server.py")) {
            "AWS emulator"
        } else {
            let program = argv.first().map(String::as_str).unwrap_or_default();
            match program.rsplit('/').next().unwrap_or_default() {
                "kube-apiserver" => "kube-apiserver",
                "etcd" => "etcd",
                "kube-controller-manager" => "kube-controller-manager",
                _ => continue,
            }
        };
        if let Some(used) = pid.parse().ok().and_then(cpu_seconds_of) {
            *seconds.entry(name.to_owned()).or_default() += used;
        }
    }
    seconds
}
