//! Reading AWS for one SsmParameter.
//!
//! First a probe without decryption, which never touches KMS and returns
//! every parameter's version (and the value of plain Strings). Then a
//! decrypting read of only the SecureStrings that changed since the Secret
//! was written. When the Secret cannot be trusted to hold the last values
//! (first sync, spec change, forced sync, edited Secret) every value must be
//! read anyway, so the named parameters are read with decryption at once: a
//! probe could tell nothing, and would double the calls.

use std::collections::{BTreeMap, HashMap};

use futures::future::join_all;
use k8s_openapi::ByteString;

use crate::api::ParameterStatus;
use crate::api::SecretValue;
use crate::api::SyncError;
use crate::api::{Decode, DeletionPolicy};
use crate::aws::{FetchedParameter, PathQuery, Scope};
use crate::batch::budget::Priority;
use crate::batch::{Fetch, Reader};
use crate::reconcile::build::secret::{MAX_SECRET_BYTES, SecretData};
use crate::reconcile::build::{compose, template};
use crate::reconcile::plan::{Entry, PathEntry, Plan};

/// How much to decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Every SecureString: the Secret's current data is not to be trusted.
    Full,
    /// Only SecureStrings whose version changed; the others are in the Secret.
    Changed,
}

/// What the Secret holds now, as far as a read can rely on it.
pub struct Known<'a> {
    /// `status.parameters` by Secret key.
    pub by_key: HashMap<&'a str, &'a ParameterStatus>,
    /// The Secret's data, once read.
    pub data: Option<&'a BTreeMap<String, ByteString>>,
    /// The Secret, unread, is as the last good sync left it: it holds
    /// every key `recorded` names.
    pub as_recorded: bool,
    /// What `status.parameters` says the Secret holds.
    pub recorded: &'a [ParameterStatus],
}

impl Known<'_> {
    /// Whether the Secret holds `key` at `version`.
    fn holds(&self, key: &str, version: i64) -> bool {
        self.by_key.get(key).map(|r| r.version) == Some(version)
            && (self.as_recorded || self.data.is_some_and(|d| d.contains_key(key)))
    }

    /// Whether the Secret holds any data.
    fn holds_data(&self) -> bool {
        match self.as_recorded {
            true => !self.recorded.is_empty(),
            false => self.data.is_some_and(|d| !d.is_empty()),
        }
    }
}

/// What a read found.
pub enum Read {
    /// Every parameter has the version the Secret holds: nothing to write.
    Unchanged(Vec<ParameterStatus>),
    /// The data the Secret should hold.
    Values(SecretData, Vec<ParameterStatus>),
}

/// One parameter found by the probe.
struct Found {
    /// The spec's name, or the full name of a parameter read by path.
    name: String,
    key: String,
    /// What to ask GetParameters to decrypt it.
    request: String,
    scope: Scope,
    decrypt: bool,
    property: Option<String>,
    decode: Decode,
    /// Every field of a JSON object, keyed by this prefix and its name.
    extract: Option<String>,
    probe: FetchedParameter,
    /// The probe already read it with decryption.
    decrypted: bool,
}

impl Found {
    fn secure(&self) -> bool {
        self.decrypt && self.probe.type_ == "SecureString"
    }
}

/// Every parameter of a plan as the probe found it; the reader waits to
/// decrypt what changed.
pub struct Probed {
    found: Vec<Found>,
    reader: Reader,
    priority: Priority,
    depth: Depth,
}

/// Probes what `plan` asks for (see [`probe_found`]).
pub async fn probe(
    plan: &Plan,
    reader: Reader,
    priority: Priority,
    depth: Depth,
    known: &Known<'_>,
    path_limit: usize,
) -> Result<Probed, SyncError> {
    let found = probe_found(plan, &reader, priority, depth, known, path_limit).await?;
    Ok(Probed {
        found,
        reader,
        priority,
        depth,
    })
}

impl Probed {
    /// On a refresh, when every parameter has the version the Secret holds:
    /// what it holds, with nothing more to read.
    pub fn unchanged(&self, known: &Known<'_>) -> Option<Vec<ParameterStatus>> {
        let claimed: Vec<Vec<&ParameterStatus>> = (self.found.iter())
            .map(|f| held_keys(f, &self.found, known))
            .collect();
        let same_keys = known.by_key.len() == claimed.iter().map(Vec::len).sum::<usize>();
        let all_held = (self.found.iter()).all(|f| held(f, &self.found, known));
        (self.depth == Depth::Changed && same_keys && all_held).then(|| {
            let statuses = self
                .found
                .iter()
                .zip(&claimed)
                .flat_map(|(f, keys)| keys.iter().map(|r| status(f, &r.key, &f.probe, known)));
            statuses.collect()
        })
    }

    /// Decrypts what must be, and makes the data; the reader is done when
    /// this returns.
    pub async fn values(self, plan: &Plan, known: &Known<'_>) -> Result<Read, SyncError> {
        let Self {
            found,
            reader,
            priority,
            depth,
        } = self;
        let to_decrypt: Vec<&Found> = (found.iter())
            .filter(|f| f.secure() && !f.decrypted)
            .filter(|f| depth == Depth::Full || !held(f, &found, known))
            .collect();
        let decrypted = decrypt(&to_decrypt, &reader, priority).await?;
        drop(reader);

        let (mut data, mut sources) = (BTreeMap::new(), BTreeMap::new());
        let mut parameters = Vec::new();
        for f in &found {
            let (values, fetched) = match decrypted.get(&(f.scope.clone(), f.request.clone())) {
                Some(p) => (shaped(f, &p.value)?, p),
                None if f.secure() && !f.decrypted => {
                    let keys = held_keys(f, &found, known).into_iter();
                    let current = keys.map(|r| (r.key.clone(), current(known, &r.key)));
                    (current.collect(), &f.probe)
                }
                None => (shaped(f, &f.probe.value)?, &f.probe),
            };
            for (key, value) in values {
                parameters.push(status(f, &key, fetched, known));
                compose::insert(&mut data, &mut sources, key, value, &f.name)?;
            }
        }
        let templated =
            template::render_all(&plan.template, &data, &plan.secret_name, MAX_SECRET_BYTES)?;
        data.extend(templated);
        Ok(Read::Values(data, parameters))
    }
}

/// The keys `f` fills as the status recorded them: its key, or — for an
/// extracted object — the keys of its fields that no other parameter
/// claims.
fn held_keys<'k>(f: &Found, found: &[Found], known: &Known<'k>) -> Vec<&'k ParameterStatus> {
    match &f.extract {
        None => known
            .by_key
            .get(f.key.as_str())
            .copied()
            .into_iter()
            .collect(),
        Some(prefix) => {
            let explicit = |key: &str| found.iter().any(|o| o.extract.is_none() && o.key == key);
            (known.recorded.iter())
                .filter(|r| r.name == f.name && r.key.starts_with(prefix.as_str()))
                .filter(|r| !explicit(&r.key))
                .collect()
        }
    }
}

/// Whether the Secret holds what `f` fills at the version the probe found.
fn held(f: &Found, found: &[Found], known: &Known<'_>) -> bool {
    match &f.extract {
        None => known.holds(&f.key, f.probe.version),
        Some(_) => {
            let keys = held_keys(f, found, known);
            !keys.is_empty() && keys.iter().all(|r| known.holds(&r.key, f.probe.version))
        }
    }
}

/// The keys and values one parameter makes: its value, with the property
/// taken, or every field of it extracted, and decoded when the spec asks.
fn shaped(f: &Found, value: &SecretValue) -> Result<Vec<(String, SecretValue)>, SyncError> {
    let fields = match (&f.extract, &f.property) {
        (Some(prefix), _) => compose::extract(&f.name, value, prefix)?,
        (None, Some(property)) => {
            vec![(f.key.clone(), compose::property(&f.name, value, property)?)]
        }
        (None, None) => vec![(f.key.clone(), value.clone())],
    };
    (fields.into_iter())
        .map(|(key, value)| Ok((key, compose::decoded(&f.name, value, f.decode)?)))
        .collect()
}

/// The value the Secret holds for `key` (an unchanged SecureString).
fn current(known: &Known<'_>, key: &str) -> SecretValue {
    let bytes = known
        .data
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    SecretValue::new(bytes)
}

/// The status of one parameter: its key as the read found it, else as the
/// status recorded it for the same version (only decrypting reads look
/// keys up).
fn status(f: &Found, key: &str, fetched: &FetchedParameter, known: &Known<'_>) -> ParameterStatus {
    let recorded_key = || {
        known
            .recorded
            .iter()
            .find(|r| r.name == f.name && r.key == key && r.version == fetched.version)
            .and_then(|r| r.key_id.clone())
    };
    ParameterStatus {
        name: f.name.clone(),
        key: key.to_owned(),
        version: fetched.version,
        type_: fetched.type_.clone(),
        key_id: fetched.key_id.clone().or_else(recorded_key),
        last_modified: fetched.last_modified.clone(),
    }
}

/// Every parameter of the plan: without decryption, or — at `Depth::Full`
/// — the named ones to decrypt with decryption at once. The first failure in
/// spec order wins; missing parameters are reported together.
async fn probe_found(
    plan: &Plan,
    reader: &Reader,
    priority: Priority,
    depth: Depth,
    known: &Known<'_>,
    path_limit: usize,
) -> Result<Vec<Found>, SyncError> {
    let decrypting = |e: &Entry| depth == Depth::Full && e.decrypt && !asked_both_ways(plan, e);
    let (secure, plain): (Vec<&Entry>, Vec<&Entry>) =
        plan.entries.iter().partition(|e| decrypting(e));
    let (mut answers, decrypted) = futures::join!(
        read_grouped(
            reader,
            priority,
            false,
            plain.iter().map(|e| (&e.scope, e.request.clone()))
        ),
        read_grouped(
            reader,
            priority,
            true,
            secure.iter().map(|e| (&e.scope, e.request.clone()))
        ),
    );
    answers.extend(decrypted);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut first_error = None;
    for entry in &plan.entries {
        match answers.get(&(entry.scope.clone(), entry.request.clone())) {
            Some(Fetch::Found(p)) => found.push(explicit(entry, p.clone(), decrypting(entry))),
            Some(Fetch::SelectorMissing) => {
                first_error.get_or_insert(SyncError::ParameterVersionNotFound {
                    parameter: entry.name.clone(),
                    selector: selector_of(&entry.request),
                });
            }
            Some(Fetch::Failed(e)) => {
                first_error.get_or_insert(e.clone());
            }
            Some(Fetch::Missing) => missing.push(entry),
            None => {
                first_error.get_or_insert(unanswered(&entry.name));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    if let Some(first) = missing.first() {
        return Err(SyncError::ParameterNotFound {
            parameters: missing.iter().map(|e| e.name.clone()).collect(),
            region: first.scope.region.clone(),
        });
    }
    if let Some(path) = &plan.path {
        // At a first sync (nothing recorded, every SecureString to be
        // decrypted) of a path that leaves out no name (one that does would
        // have KMS decrypt what it leaves out), the listing brings them
        // decrypted: no second read of each follows. Later full reads (a
        // spec change, a forced sync) list without decryption and decrypt
        // by name, as refreshes do, so that they need the same permissions.
        // If KMS refuses one, the page fails whole and says no more than the
        // path: listed again without decryption, the reads that follow name
        // it.
        let first = depth == Depth::Full && known.recorded.is_empty();
        let mut query = PathQuery {
            decrypt: first && path.selection.picks_all(),
            ..path.query.clone()
        };
        let mut listed = match reader
            .read_path(&path.scope, &query, priority, path_limit)
            .await
        {
            Err(error) if query.decrypt && kms_refused(&error) => {
                query.decrypt = false;
                reader
                    .read_path(&path.scope, &query, priority, path_limit)
                    .await?
            }
            listed => listed?,
        };
        listed.retain(|p| path.selection.picks(&p.name));
        let listed = checked_listing(plan, path, listed, reader, priority, known).await?;
        for p in listed {
            let key = compose::path_key(&path.query.prefix, &p.name, path.key_from)?;
            found.push(Found {
                name: p.name.clone(),
                key,
                request: p.name.clone(),
                scope: path.scope.clone(),
                decrypt: true,
                property: None,
                decode: Decode::None,
                extract: None,
                probe: p,
                decrypted: query.decrypt,
            });
        }
    }
    Ok(found)
}

/// Whether KMS refused to decrypt (the key's policy or state), as opposed
/// to failing for a while.
fn kms_refused(error: &SyncError) -> bool {
    matches!(
        error,
        SyncError::KmsAccessDenied { .. }
            | SyncError::KmsKeyDisabled { .. }
            | SyncError::KmsKeyPendingDeletion { .. }
            | SyncError::KmsKeyNotFound { .. }
            | SyncError::KmsKeyUnusable { .. }
    )
}

/// A path listing, checked against what the Secret holds from it: a name
/// the listing leaves out is gone only if GetParameters says so too.
/// GetParametersByPath pages may be short and a listing can end early, so
/// its silence about a name is never "the parameter is gone".
///
/// - A left-out name that exists: the listing was incomplete —
///   `AwsUnavailable`, nothing written.
/// - Left-out names that AWS says do not exist: under `Retain` they keep
///   their keys and the sync says `ParameterNotFound` naming them (nothing
///   written); under `Delete` their keys are dropped (and the Secret is
///   deleted when nothing is left of it).
/// - A listing with nothing in it: `ParameterNotFound` for the path,
///   nothing written — except under `Delete` when the Secret holds data that
///   nothing confirms gone, which waits for a listing it can trust
///   (`AwsUnavailable`), so that an empty answer never deletes a Secret.
async fn checked_listing(
    plan: &Plan,
    path: &PathEntry,
    listed: Vec<FetchedParameter>,
    reader: &Reader,
    priority: Priority,
    known: &Known<'_>,
) -> Result<Vec<FetchedParameter>, SyncError> {
    let explicit: Vec<&str> = plan.entries.iter().map(|e| e.name.as_str()).collect();
    let left_out: Vec<String> = known
        .recorded
        .iter()
        .map(|p| p.name.as_str())
        .filter(|name| under(&path.query, name) && !explicit.contains(name))
        .filter(|name| path.selection.picks(name))
        .filter(|name| !listed.iter().any(|p| p.name == *name))
        .map(str::to_owned)
        .collect();
    let mut gone = Vec::new();
    if !left_out.is_empty() {
        let answers = reader
            .read(path.scope.clone(), false, priority, left_out.clone())
            .await;
        for name in left_out {
            match answers.get(&name) {
                Some(Fetch::Missing) => gone.push(name),
                Some(Fetch::Found(_)) => {
                    return Err(SyncError::AwsUnavailable {
                        detail: format!(
                            "GetParametersByPath of {} left out {name}, which exists: the listing was incomplete; nothing was written",
                            path.query.prefix
                        ),
                    });
                }
                Some(Fetch::Failed(error)) => return Err(error.clone()),
                Some(Fetch::SelectorMissing) | None => return Err(unanswered(&name)),
            }
        }
    }
    if !gone.is_empty() && plan.deletion == DeletionPolicy::Retain {
        return Err(SyncError::ParameterNotFound {
            parameters: gone,
            region: path.scope.region.clone(),
        });
    }
    if listed.is_empty() {
        if !gone.is_empty() && plan.entries.is_empty() {
            // Under Delete, every parameter the Secret held is gone.
            return Err(SyncError::ParameterNotFound {
                parameters: gone,
                region: path.scope.region.clone(),
            });
        }
        if gone.is_empty() {
            if plan.deletion == DeletionPolicy::Delete && known.holds_data() {
                return Err(SyncError::AwsUnavailable {
                    detail: format!(
                        "GetParametersByPath listed nothing under {} and nothing confirms that what the Secret holds is gone; nothing was deleted",
                        path.query.prefix
                    ),
                });
            }
            return Err(SyncError::ParameterNotFound {
                parameters: vec![format!("under {}", path.query.prefix)],
                region: path.scope.region.clone(),
            });
        }
    }
    Ok(listed)
}

/// Whether a listing of `query` would include parameter `name`.
fn under(query: &PathQuery, name: &str) -> bool {
    let prefix = format!("{}/", query.prefix.trim_end_matches('/'));
    name.strip_prefix(&prefix)
        .is_some_and(|rest| !rest.is_empty() && (query.recursive || !rest.contains('/')))
}

fn explicit(entry: &Entry, probe: FetchedParameter, decrypted: bool) -> Found {
    Found {
        name: entry.name.clone(),
        key: entry.key.clone(),
        request: entry.request.clone(),
        scope: entry.scope.clone(),
        decrypt: entry.decrypt,
        property: entry.property.clone(),
        decode: entry.decode,
        extract: entry.extract.clone(),
        probe,
        decrypted,
    }
}

/// Whether the same parameter is named once with `decrypt` and once
/// without: both reads' answers would share a name, so both go without
/// decryption first, as always.
fn asked_both_ways(plan: &Plan, entry: &Entry) -> bool {
    plan.entries
        .iter()
        .any(|e| e.scope == entry.scope && e.request == entry.request && e.decrypt != entry.decrypt)
}

/// Decrypting reads of `found`, by scope and name.
async fn decrypt(
    found: &[&Found],
    reader: &Reader,
    priority: Priority,
) -> Result<HashMap<(Scope, String), FetchedParameter>, SyncError> {
    let answers = read_grouped(
        reader,
        priority,
        true,
        found.iter().map(|f| (&f.scope, f.request.clone())),
    )
    .await;
    let mut values = HashMap::new();
    for f in found {
        let key = (f.scope.clone(), f.request.clone());
        match answers.get(&key) {
            Some(Fetch::Found(p)) => {
                values.insert(key, p.clone());
            }
            Some(Fetch::Failed(e)) => return Err(e.clone()),
            // Deleted between the probe and this read.
            Some(Fetch::Missing | Fetch::SelectorMissing) => {
                return Err(SyncError::ParameterNotFound {
                    parameters: vec![f.name.clone()],
                    region: f.scope.region.clone(),
                });
            }
            None => return Err(unanswered(&f.name)),
        }
    }
    Ok(values)
}

/// Reads `requests` through the batcher, one call per scope.
async fn read_grouped<'a>(
    reader: &Reader,
    priority: Priority,
    decrypt: bool,
    requests: impl Iterator<Item = (&'a Scope, String)>,
) -> HashMap<(Scope, String), Fetch> {
    let mut groups: BTreeMap<Scope, Vec<String>> = BTreeMap::new();
    for (scope, request) in requests {
        groups.entry(scope.clone()).or_default().push(request);
    }
    let answers = join_all(groups.into_iter().map(|(scope, names)| async move {
        let fetched = reader.read(scope.clone(), decrypt, priority, names).await;
        fetched
            .into_iter()
            .map(move |(name, f)| ((scope.clone(), name), f))
    }))
    .await;
    answers.into_iter().flatten().collect()
}

/// A read that came back without a word about `name`: never "it is gone".
fn unanswered(name: &str) -> SyncError {
    SyncError::AwsUnavailable {
        detail: format!("no answer for parameter {name}"),
    }
}

/// How a status names the version or label `request` pins.
pub fn selector_of(request: &str) -> String {
    match crate::aws::arn::split_selector(request).1 {
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => format!("version {s}"),
        Some(s) => format!("label {s}"),
        None => "such version".to_owned(),
    }
}
