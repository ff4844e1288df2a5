//! The decision cache (moka): answers that a fresh evaluation against the
//! active revision would give, without evaluating again.
//!
//! Never stale, never wrong:
//! - the key holds the snapshot generation, so an entry made before an
//!   activation (or, later, a data write) can never answer after it; the
//!   whole cache is also emptied when a new generation is first seen;
//! - the key holds the query path and a 128-bit hash of exactly the parts of
//!   the input the entry point's rules can read ([`crate::engine::reads`]),
//!   in canonical form;
//! - entry points that can call a non-deterministic builtin (the clock,
//!   randomness, the network) are never cached, nor are configured paths;
//! - errors are never cached.
//!
//! Concurrent identical misses evaluate once (moka's `try_get_with`). The
//! cache is bounded by weight in bytes; giving every entry a weight of at
//! least `max_bytes / max_entries` also bounds the number of entries.

pub mod key;
pub mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::notification::RemovalCause;

use crate::engine::reads::ReadSet;
use crate::engine::{DataPath, Value};
use crate::metrics::Metrics;

/// How the cache is set up.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Whether decisions are cached at all.
    pub enabled: bool,
    /// At most this many entries.
    pub max_entries: u64,
    /// At most this many bytes of cached results (approximate).
    pub max_bytes: u64,
    /// Entries expire this long after they were made (none: only eviction
    /// and activation remove them).
    pub ttl: Option<Duration>,
    /// Paths never cached (a path and everything below it).
    pub exclude_paths: Vec<DataPath>,
}

/// What identifies one cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    generation: u64,
    scope: Arc<str>,
    input: u128,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache.
    Hit,
    /// Evaluated, then stored.
    Miss,
    /// Evaluated; not cacheable (or the cache is off).
    Bypass,
}

impl CacheStatus {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// A cached value's approximate size in bytes.
pub trait Weigh {
    /// Approximate bytes held.
    fn weight(&self) -> usize;
}

/// A cached Data API decision.
#[derive(Debug, Clone)]
pub struct CachedDecision {
    /// The result document.
    pub result: Value,
    /// How long the evaluation that produced it took.
    pub eval_ns: u64,
}

impl Weigh for CachedDecision {
    fn weight(&self) -> usize {
        key::approximate_size(&self.result)
    }
}

/// A bounded cache of one kind of answer.
pub struct DecisionCache<V> {
    name: &'static str,
    cache: Option<Cache<CacheKey, V>>,
    exclude: Vec<DataPath>,
    generation: AtomicU64,
    metrics: Option<Arc<Metrics>>,
    /// Hit, miss and bypass counters.
    counters: Option<[prometheus::IntCounter; 3]>,
}

impl<V> std::fmt::Debug for DecisionCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("name", &self.name)
            .field("enabled", &self.cache.is_some())
            .finish()
    }
}

impl<V: Clone + Send + Sync + Weigh + 'static> DecisionCache<V> {
    /// A cache named `name` (the `cache` label of its metrics).
    pub fn new(
        name: &'static str,
        settings: &CacheSettings,
        metrics: Option<Arc<Metrics>>,
    ) -> DecisionCache<V> {
        let usable = settings.enabled && settings.max_entries > 0 && settings.max_bytes > 0;
        let cache = usable.then(|| {
            let floor = (settings.max_bytes / settings.max_entries).clamp(1, u64::from(u32::MAX));
            let mut builder = Cache::builder().max_capacity(settings.max_bytes).weigher(
                move |_key: &CacheKey, value: &V| {
                    (value.weight() as u64).clamp(floor, u64::from(u32::MAX)) as u32
                },
            );
            if let Some(ttl) = settings.ttl {
                builder = builder.time_to_live(ttl);
            }
            if let Some(metrics) = metrics.clone() {
                builder = builder.eviction_listener(move |_key, _value, cause| {
                    let cause = match cause {
                        RemovalCause::Size => "size",
                        RemovalCause::Expired => "expired",
                        RemovalCause::Explicit | RemovalCause::Replaced => return,
                    };
                    metrics.cache_evicted(name, cause);
                });
            }
            builder.build()
        });
        DecisionCache {
            name,
            cache,
            exclude: settings.exclude_paths.clone(),
            generation: AtomicU64::new(0),
            counters: metrics.as_ref().map(|m| m.cache_counters(name)),
            metrics,
        }
    }

    /// Why answers for `path` are not cached, when they are not.
    pub fn refusal(&self, path: &DataPath, reads: &ReadSet) -> Option<String> {
        if self.cache.is_none() {
            return Some("the decision cache is disabled".into());
        }
        if let Some(excluded) = self
            .exclude
            .iter()
            .find(|e| path.segments().starts_with(e.segments()))
        {
            return Some(format!("excluded by configuration ({excluded})"));
        }
        reads.nondeterministic.first().map(|n| {
            format!(
                "calls the non-deterministic builtin {} at {}",
                n.builtin, n.location
            )
        })
    }

    /// The key for an answer at `path` (or another scope, such as
    /// admission) in `generation`, or `None` when it must not be cached.
    pub fn key(
        &self,
        generation: u64,
        path: &DataPath,
        reads: &ReadSet,
        input: Option<&Value>,
    ) -> Option<CacheKey> {
        self.admit(generation, path, reads)?;
        Some(Self::make_key(
            generation,
            path,
            key::hash_input(input, &reads.input),
        ))
    }

    /// The key for an answer whose read input was already hashed (by
    /// [`stream::hash_json`], say), or `None` when it must not be cached.
    pub fn key_from_hash(
        &self,
        generation: u64,
        path: &DataPath,
        reads: &ReadSet,
        input_hash: u128,
    ) -> Option<CacheKey> {
        self.admit(generation, path, reads)?;
        Some(Self::make_key(generation, path, input_hash))
    }

    /// `Some` when answers for `path` may be cached in `generation` (the
    /// allocation-free form of [`DecisionCache::refusal`]). The first
    /// request of a new generation empties the cache: nothing older can be
    /// hit again, so it only holds memory.
    fn admit(&self, generation: u64, path: &DataPath, reads: &ReadSet) -> Option<()> {
        let cache = self.cache.as_ref()?;
        let excluded = self
            .exclude
            .iter()
            .any(|e| path.segments().starts_with(e.segments()));
        if excluded || !reads.deterministic() {
            return None;
        }
        let seen = self.generation.load(Ordering::Relaxed);
        if generation > seen
            && self
                .generation
                .compare_exchange(seen, generation, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            cache.invalidate_all();
        }
        Some(())
    }

    fn make_key(generation: u64, path: &DataPath, input_hash: u128) -> CacheKey {
        CacheKey {
            generation,
            scope: Arc::from(path.as_ref_str()),
            input: input_hash,
        }
    }

    /// The cached answer for `key`, or `compute`'s, stored when `key` is
    /// given. Concurrent callers with the same key wait for one
    /// computation. Errors are returned, never stored.
    pub async fn get_or_compute<E>(
        &self,
        key: Option<CacheKey>,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<(V, CacheStatus), Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let (cache, key) = match (&self.cache, key) {
            (Some(cache), Some(key)) => (cache, key),
            _ => {
                self.count(CacheStatus::Bypass);
                return compute()
                    .map(|v| (v, CacheStatus::Bypass))
                    .map_err(Arc::new);
            }
        };
        let mut computed = false;
        let value = cache
            .try_get_with(key, async {
                computed = true;
                compute()
            })
            .await?;
        let status = if computed {
            CacheStatus::Miss
        } else {
            CacheStatus::Hit
        };
        self.count(status);
        Ok((value, status))
    }

    fn count(&self, status: CacheStatus) {
        if let Some(counters) = &self.counters {
            counters[status as usize].inc();
        }
    }

    /// Publish the entry count and weight to the metrics (after applying
    /// pending inserts and evictions, so the figures are current).
    pub async fn record_size(&self) {
        if let (Some(cache), Some(metrics)) = (&self.cache, &self.metrics) {
            cache.run_pending_tasks().await;
            metrics.cache_size(self.name, cache.entry_count(), cache.weighted_size());
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reads::InputReads;

    #[derive(Clone)]
    struct Sized(usize);

    impl Weigh for Sized {
        fn weight(&self) -> usize {
            self.0
        }
    }

    fn settings() -> CacheSettings {
        CacheSettings {
            enabled: true,
            max_entries: 100,
            max_bytes: 1 << 20,
            ttl: None,
            exclude_paths: vec![DataPath::parse("secrets/live")],
        }
    }

    fn whole() -> ReadSet {
        ReadSet {
            input: InputReads::Whole,
            nondeterministic: Vec::new(),
        }
    }

    fn input(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[tokio::test]
    async fn hits_after_a_miss_and_never_across_generations() {
        let cache: DecisionCache<Sized> = DecisionCache::new("t", &settings(), None);
        let path = DataPath::parse("a/b");
        let reads = whole();
        let i = input(r#"{"x": 1}"#);
        let key = || cache.key(1, &path, &reads, Some(&i));
        let (_, status) = cache
            .get_or_compute::<()>(key(), || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Miss);
        let (_, status) = cache
            .get_or_compute::<()>(key(), || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Hit);
        let newer = cache.key(2, &path, &reads, Some(&i));
        let (_, status) = cache
            .get_or_compute::<()>(newer, || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Miss);
        let other_path = cache.key(2, &DataPath::parse("a/c"), &reads, Some(&i));
        let (_, status) = cache
            .get_or_compute::<()>(other_path, || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Miss);
    }

    #[tokio::test]
    async fn errors_are_not_stored() {
        let cache: DecisionCache<Sized> = DecisionCache::new("t", &settings(), None);
        let path = DataPath::parse("a");
        let key = || cache.key(1, &path, &whole(), None);
        assert!(cache
            .get_or_compute(key(), || Err::<Sized, _>("boom"))
            .await
            .is_err());
        let (_, status) = cache
            .get_or_compute::<()>(key(), || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Miss);
    }

    #[tokio::test]
    async fn nondeterministic_and_excluded_paths_are_not_cached() {
        let cache: DecisionCache<Sized> = DecisionCache::new("t", &settings(), None);
        let clocked = ReadSet {
            input: InputReads::Whole,
            nondeterministic: vec![crate::engine::reads::Nondeterminism {
                builtin: "time.now_ns".into(),
                location: crate::location::Location::new("p.rego", 3, 5),
            }],
        };
        let path = DataPath::parse("a");
        assert!(cache.key(1, &path, &clocked, None).is_none());
        assert!(cache
            .refusal(&path, &clocked)
            .unwrap()
            .contains("time.now_ns at p.rego:3:5"));
        let live = DataPath::parse("secrets/live/check");
        assert!(cache.key(1, &live, &whole(), None).is_none());
        assert!(cache.refusal(&live, &whole()).unwrap().contains("excluded"));
        let disabled: DecisionCache<Sized> = DecisionCache::new(
            "t",
            &CacheSettings {
                enabled: false,
                ..settings()
            },
            None,
        );
        assert!(disabled.key(1, &path, &whole(), None).is_none());
        let (_, status) = disabled
            .get_or_compute::<()>(None, || Ok(Sized(1)))
            .await
            .unwrap();
        assert_eq!(status, CacheStatus::Bypass);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_identical_misses_evaluate_once() {
        let cache: Arc<DecisionCache<Sized>> = Arc::new(DecisionCache::new("t", &settings(), None));
        let evaluations = Arc::new(AtomicU64::new(0));
        let path = DataPath::parse("slow");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let evaluations = evaluations.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let key = cache.key(1, &path, &whole(), None);
                cache
                    .get_or_compute::<()>(key, || {
                        evaluations.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(Sized(1))
                    })
                    .await
                    .unwrap()
                    .1
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(evaluations.load(Ordering::SeqCst), 1);
        assert_eq!(
            statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
            1
        );
    }

    #[tokio::test]
    async fn the_entry_bound_holds() {
        let small = CacheSettings {
            max_entries: 10,
            max_bytes: 10_000,
            ..settings()
        };
        let cache: DecisionCache<Sized> = DecisionCache::new("t", &small, None);
        for i in 0..100 {
            let key = cache.key(1, &DataPath::parse(&format!("p{i}")), &whole(), None);
            cache
                .get_or_compute::<()>(key, || Ok(Sized(1)))
                .await
                .unwrap();
        }
        let inner = cache.cache.as_ref().unwrap();
        inner.run_pending_tasks().await;
        assert!(inner.entry_count() <= 10, "{}", inner.entry_count());
    }
}
