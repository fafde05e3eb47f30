//! Small building blocks of the npm adapter: a byte-bounded LRU map, single-flight, and the
//! per-server registry of adapter state.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Something whose memory cost the cache can count.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

struct Slot<V> {
    value: V,
    weight: usize,
    used: u64,
}

struct LruInner<K, V> {
    map: HashMap<K, Slot<V>>,
    total: usize,
    tick: u64,
}

/// A map bounded by the summed [`Weigh::weight`] of its values; the least recently used
/// entries go first. Values larger than a quarter of the budget are not kept.
pub(crate) struct Lru<K, V> {
    inner: Mutex<LruInner<K, V>>,
    budget: usize,
    /// The `cache` label of `pkggate_cache_lookups_total`.
    name: &'static str,
}

impl<K: Eq + Hash + Clone, V: Clone + Weigh> Lru<K, V> {
    pub fn new(name: &'static str, budget: usize) -> Self {
        Lru {
            inner: Mutex::new(LruInner {
                map: HashMap::new(),
                total: 0,
                tick: 0,
            }),
            budget,
            name,
        }
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let found = {
            let mut g = lock(&self.inner);
            g.tick += 1;
            let tick = g.tick;
            g.map.get_mut(k).map(|slot| {
                slot.used = tick;
                slot.value.clone()
            })
        };
        crate::metrics::cache_lookup(self.name, found.is_some());
        found
    }

    pub fn insert(&self, k: K, v: V) {
        let weight = v.weight();
        let mut g = lock(&self.inner);
        if let Some(old) = g.map.remove(&k) {
            g.total -= old.weight;
        }
        if weight > self.budget / 4 {
            return;
        }
        while g.total + weight > self.budget {
            let Some(oldest) = g
                .map
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = g.map.remove(&oldest) {
                g.total -= s.weight;
            }
        }
        g.tick += 1;
        let used = g.tick;
        g.total += weight;
        g.map.insert(
            k,
            Slot {
                value: v,
                weight,
                used,
            },
        );
    }

    pub fn remove(&self, k: &K) {
        let mut g = lock(&self.inner);
        if let Some(s) = g.map.remove(k) {
            g.total -= s.weight;
        }
    }

    /// Total weight held (tests and metrics).
    pub fn total(&self) -> usize {
        lock(&self.inner).total
    }
}

pub(crate) use crate::flights::Flights;

/// Adapter state lives as long as the server's [`crate::gate::Gate`]: `AppState` has no slot
/// for it, so it is found by the gate's address (checked with a weak reference).
pub(crate) struct Registry<T> {
    entries: Mutex<Vec<(Weak<crate::gate::Gate>, Arc<T>)>>,
}

impl<T> Registry<T> {
    pub const fn new() -> Self {
        Registry {
            entries: Mutex::new(Vec::new()),
        }
    }

    pub fn get_or_init(&self, gate: &Arc<crate::gate::Gate>, init: impl FnOnce() -> T) -> Arc<T> {
        let mut g = lock(&self.entries);
        if let Some((_, t)) = g
            .iter()
            .find(|(w, _)| w.upgrade().is_some_and(|a| Arc::ptr_eq(&a, gate)))
        {
            return t.clone();
        }
        g.retain(|(w, _)| w.strong_count() > 0);
        let t = Arc::new(init());
        g.push((Arc::downgrade(gate), t.clone()));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct W(usize);
    impl Weigh for W {
        fn weight(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn lru_evicts_least_recently_used_by_weight() {
        let c = Lru::new("test", 100);
        c.insert(1, W(20));
        c.insert(2, W(20));
        c.insert(3, W(20));
        assert!(c.get(&1).is_some());
        c.insert(4, W(25));
        c.insert(5, W(25));
        assert!(c.get(&2).is_none(), "the least recently used goes first");
        assert!(c.get(&1).is_some());
        assert!(c.total() <= 100);
        c.insert(6, W(26));
        assert!(
            c.get(&6).is_none(),
            "a value over a quarter of the budget is not kept"
        );
    }

    #[tokio::test]
    async fn flights_share_one_execution() {
        let f: Arc<Flights<u32, u32>> = Arc::new(Flights::new());
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let f = f.clone();
            let runs = runs.clone();
            let mut rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                f.run(7, || async move {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = rx.wait_for(|v| *v).await;
                    42
                })
                .await
            }));
        }
        tokio::task::yield_now().await;
        let _ = tx.send(true);
        for t in tasks {
            assert_eq!(t.await.unwrap(), 42);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
