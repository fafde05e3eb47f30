//! Single-flight: concurrent callers with the same key share one execution (used by the
//! adapters for cold upstream fetches).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::OnceCell;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Single-flight: concurrent callers with the same key share one execution. The result is
/// handed to everyone waiting at that moment and then forgotten (it is not a cache).
pub struct Flights<K, V> {
    map: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }

    pub async fn run<F: Future<Output = V>>(&self, key: K, f: impl FnOnce() -> F) -> V {
        let cell = lock(&self.map)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        // If the caller running `f` goes away, another waiter takes over (OnceCell).
        let v = cell.get_or_init(f).await.clone();
        let mut m = lock(&self.map);
        if m.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            m.remove(&key);
        }
        v
    }
}
