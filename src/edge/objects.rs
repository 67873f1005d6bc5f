//! The simulated origin's objects: size, ETag and body bytes are pure functions of the path, so
//! every run (and every test) sees the same "images".

use bytes::Bytes;
use std::sync::OnceLock;

use crate::urls::mix;

/// FNV-1a of the path: stable across runs and platforms.
pub(crate) fn path_hash(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) const MIN_SIZE: u64 = 2_000;
pub(crate) const MAX_SIZE: u64 = 200_000;

/// Image-like sizes: log-uniform between 2 KB and 200 KB.
pub fn object_size(path: &str) -> u64 {
    let u = (mix(path_hash(path)) >> 11) as f64 / (1u64 << 53) as f64;
    let ln = (MIN_SIZE as f64).ln() + u * ((MAX_SIZE as f64).ln() - (MIN_SIZE as f64).ln());
    (ln.exp() as u64).clamp(MIN_SIZE, MAX_SIZE)
}

pub(crate) fn etag(path: &str) -> String {
    format!("\"{:016x}\"", mix(path_hash(path) ^ 0xe7a9))
}

const PATTERN_LEN: usize = 256 * 1024;

fn pattern() -> &'static Bytes {
    static P: OnceLock<Bytes> = OnceLock::new();
    P.get_or_init(|| {
        let mut v = Vec::with_capacity(PATTERN_LEN + 8);
        let mut i = 0u64;
        while v.len() < PATTERN_LEN {
            v.extend_from_slice(&mix(i).to_le_bytes());
            i += 1;
        }
        v.truncate(PATTERN_LEN);
        Bytes::from(v)
    })
}

/// Bytes `[from, to)` of the object's body: a zero-copy slice of a shared pattern.
pub(crate) fn body_slice(path: &str, from: u64, to: u64) -> Bytes {
    let off = (path_hash(path) % 4096) as usize;
    let p = pattern();
    let len = (to - from) as usize;
    let start = off + from as usize;
    if start + len <= p.len() {
        p.slice(start..start + len)
    } else {
        // objects are at most 200 KB, the pattern 256 KB: only reached for odd configurations
        let mut v = Vec::with_capacity(len);
        for k in 0..len {
            v.push(p[(start + k) % p.len()]);
        }
        Bytes::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_stable_and_in_range() {
        assert_eq!(object_size("/a.jpg"), object_size("/a.jpg"));
        let mut small = 0;
        for i in 0..10_000 {
            let s = object_size(&format!("/img/{i}.jpg"));
            assert!((MIN_SIZE..=MAX_SIZE).contains(&s));
            if s < 20_000 {
                small += 1;
            }
        }
        // log-uniform: half the objects under sqrt(2k*200k) = 20 KB
        assert!((4_500..5_500).contains(&small), "{small}");
    }

    #[test]
    fn body_is_deterministic() {
        let a = body_slice("/x.png", 0, 1000);
        assert_eq!(a, body_slice("/x.png", 0, 1000));
        assert_eq!(a.slice(500..1000), body_slice("/x.png", 500, 1000));
        assert_eq!(body_slice("/x.png", 0, MAX_SIZE).len(), MAX_SIZE as usize);
    }
}
