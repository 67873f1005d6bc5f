//! The edge's LRU cache: object metadata only (bodies are derived from the path), bounded by
//! bytes and by object count.

use std::time::Instant;

use lru::LruCache;

pub struct Entry {
    pub size: u64,
    pub stored: Instant,
    pub hits: u64,
}

pub struct Cache {
    lru: LruCache<String, Entry>,
    bytes: u64,
    max_bytes: u64,
    max_objects: usize,
    pub evictions: u64,
}

impl Cache {
    pub fn new(max_bytes: u64, max_objects: usize) -> Cache {
        Cache {
            lru: LruCache::unbounded(),
            bytes: 0,
            max_bytes,
            max_objects,
            evictions: 0,
        }
    }

    /// A hit returns (hits so far including this one, age).
    pub fn lookup(&mut self, key: &str, now: Instant) -> Option<(u64, u64)> {
        let e = self.lru.get_mut(key)?;
        e.hits += 1;
        Some((e.hits, now.saturating_duration_since(e.stored).as_secs()))
    }

    pub fn insert(&mut self, key: &str, size: u64, now: Instant) {
        if size > self.max_bytes || self.max_objects == 0 {
            return;
        }
        if let Some(old) = self.lru.put(
            key.to_string(),
            Entry {
                size,
                stored: now,
                hits: 0,
            },
        ) {
            self.bytes -= old.size;
        }
        self.bytes += size;
        while self.bytes > self.max_bytes || self.lru.len() > self.max_objects {
            match self.lru.pop_lru() {
                Some((_, e)) => {
                    self.bytes -= e.size;
                    self.evictions += 1;
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn clear(&mut self) {
        self.lru.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_by_bytes_and_count() {
        let now = Instant::now();
        let mut c = Cache::new(300, 10);
        c.insert("/a", 100, now);
        c.insert("/b", 100, now);
        c.insert("/c", 100, now);
        assert!(c.lookup("/a", now).is_some()); // /a is now most recent
        c.insert("/d", 100, now); // evicts /b
        assert!(c.lookup("/b", now).is_none());
        assert!(c.lookup("/a", now).is_some());
        assert_eq!(c.bytes(), 300);
        let mut c = Cache::new(u64::MAX, 2);
        c.insert("/a", 1, now);
        c.insert("/b", 1, now);
        c.insert("/c", 1, now);
        assert_eq!(c.len(), 2);
        assert!(c.lookup("/a", now).is_none());
        assert_eq!(c.lookup("/c", now), Some((1, 0)));
        assert_eq!(c.lookup("/c", now), Some((2, 0)));
    }
}
