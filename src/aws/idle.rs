//! A map whose entries go once nobody has used them for [`IDLE`]: the
//! operator's per-identity and per-scope caches (credentials, SDK clients)
//! would otherwise grow with every namespace, ServiceAccount and role that
//! ever read, long after their SsmParameters are gone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Longer than the default refresh interval (1 h), so that an identity read
/// at every refresh keeps its entry.
pub const IDLE: Duration = Duration::from_secs(2 * 3600);
/// Entries are looked over at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct IdleMap<K, V> {
    inner: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    entries: HashMap<K, (V, Instant)>,
    swept: Instant,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleMap<K, V> {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Entries {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// The value of `key`, made by `make` if there is none; marks it used.
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> V {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(inner.swept) >= SWEEP_EVERY {
            inner
                .entries
                .retain(|_, (_, used)| now.duration_since(*used) < IDLE);
            inner.swept = now;
        }
        let entry = inner
            .entries
            .entry(key.clone())
            .or_insert_with(|| (make(), now));
        entry.1 = now;
        entry.0.clone()
    }

    /// The value of `key`, if there is one; marks it used.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = inner.entries.get_mut(key)?;
        entry.1 = now;
        Some(entry.0.clone())
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Default for IdleMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_nobody_used_for_the_idle_time_go_and_used_ones_stay() {
        let map: IdleMap<&str, u32> = IdleMap::new();
        map.get_or_insert_with(&"gone", || 1);
        map.get_or_insert_with(&"kept", || 2);
        for _ in 0..3 {
            tokio::time::advance(IDLE / 3).await;
            assert_eq!(map.get_or_insert_with(&"kept", || 0), 2, "made again");
        }
        tokio::time::advance(SWEEP_EVERY).await;
        map.get_or_insert_with(&"kept", || 0);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get_or_insert_with(&"gone", || 3), 3, "a new entry");
    }
}
