//! The distinct-URL table: open addressing with linear probing over XXH3-128 keys, one cache
//! line per slot holding the whole aggregate, so a batch of lines can prefetch their slots
//! before it touches them (the table outgrows the caches at a few hundred thousand URLs, and
//! a miss per line was the largest single cost of extraction).

/// One distinct URL. 64 bytes, aligned: a probe touches one cache line. Plain integers only:
/// all-zero is a valid (empty) slot.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// 0: empty, whatever the other fields hold (a real key of 0 is stored as 1)
    pub key: u128,
    pub count: u64,
    pub bytes_sum: u64,
    pub bytes_n: u64,
    /// unix microseconds; MAX/MIN while no timed record was seen
    pub first: i64,
    pub last: i64,
    /// `observe` only: every request of the URL, hit or miss (saturating); `count` counts its
    /// misses there, and `bytes_*` their sizes
    pub requests: u32,
    /// index into `Shard::originals`
    pub original: u32,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

const EMPTY: Slot = Slot {
    key: 0,
    count: 0,
    bytes_sum: 0,
    bytes_n: 0,
    first: i64::MAX,
    last: i64::MIN,
    requests: 0,
    original: 0,
};

/// Keys are split by their top bits into this many shards, so that merging the threads'
/// tables, and sorting the result, run shard by shard in parallel.
pub(crate) const SHARDS: usize = 16;

/// A hint to bring `p`'s cache line in; never faults.
#[inline]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Per-thread table: one open-addressed shard per key range.
pub(crate) struct Table {
    pub shards: Vec<Shard>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

fn shard_of(key: u128) -> usize {
    (key >> 124) as usize % SHARDS
}

impl Table {
    #[inline]
    pub(crate) fn prefetch(&self, key: u128) {
        self.shards[shard_of(key)].prefetch(key)
    }

    pub fn slot(&mut self, key: u128, original: &str) -> (&mut Slot, &mut Box<str>) {
        self.shards[shard_of(key)].slot(key, original)
    }

    /// Memory held: the slot arrays and the spellings (with their allocation's overhead).
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| Slots::bytes(s.slots.len()) + s.heap)
            .sum()
    }

    /// Distinct URLs held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    /// Every entry in key order: shards hold key ranges in order (`shard_of` takes the top
    /// bits), so each is sorted alone and only one shard's entries are held at a time.
    pub(crate) fn into_sorted(self) -> impl Iterator<Item = (Slot, Box<str>)> {
        self.shards.into_iter().flat_map(|s| {
            let mut v: Vec<(Slot, Box<str>)> = s.into_entries().collect();
            v.sort_unstable_by_key(|(s, _)| s.key);
            v
        })
    }
}

/// Zeroed slot storage (all-zero is an empty slot), aligned to 2 MiB once it is that large and
/// advised for transparent huge pages: a random probe per line otherwise misses the TLB as well
/// as the cache.
struct Slots {
    ptr: std::ptr::NonNull<Slot>,
    len: usize,
}

// SAFETY: Slots owns its allocation of plain data, like a Vec<Slot>.
unsafe impl Send for Slots {}

impl Slots {
    fn bytes(len: usize) -> usize {
        len * std::mem::size_of::<Slot>()
    }

    fn new(len: usize) -> Slots {
        let p = crate::sys::alloc_zeroed(Slots::bytes(len));
        let ptr = std::ptr::NonNull::new(p.cast::<Slot>()).expect("mapping checked");
        Slots { ptr, len }
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        // SAFETY: ptr holds len initialised (zeroed or written) slots
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [Slot] {
        // SAFETY: as above, and &mut self is unique
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: from alloc_zeroed with this size, not used after
        unsafe { crate::sys::free_zeroed(self.ptr.as_ptr().cast(), Slots::bytes(self.len)) };
    }
}

pub(crate) struct Shard {
    slots: Slots,
    len: usize,
    /// the spelling kept for each slot
    pub originals: Vec<Box<str>>,
    /// bytes the spellings hold on the heap
    heap: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            slots: Slots::new(1 << 10),
            len: 0,
            originals: Vec::new(),
            heap: 0,
        }
    }
}

fn fix(key: u128) -> u128 {
    key.max(1)
}

impl Shard {
    pub fn len(&self) -> usize {
        self.len
    }

    fn home(&self, key: u128) -> usize {
        (key as u64 as usize) & (self.slots.len() - 1)
    }

    /// Hints the CPU to fetch the slot a key starts probing at.
    #[inline]
    pub(crate) fn prefetch(&self, key: u128) {
        prefetch(self.slots.as_ptr().wrapping_add(self.home(fix(key))).cast());
    }

    /// The slot of `key` and its spelling, claimed (with `original` as its spelling) when new.
    pub fn slot(&mut self, key: u128, original: &str) -> (&mut Slot, &mut Box<str>) {
        self.slot_with(key, || original.into())
    }

    /// `slot`, taking the spelling by value (when merging tables: no copy).
    pub(crate) fn slot_with(
        &mut self,
        key: u128,
        original: impl FnOnce() -> Box<str>,
    ) -> (&mut Slot, &mut Box<str>) {
        let key = fix(key);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key {
                let o = self.slots[i].original as usize;
                return (&mut self.slots[i], &mut self.originals[o]);
            }
            if k == 0 {
                self.len += 1;
                let o = original();
                // the box, the allocator's header and rounding, and the slot in `originals`
                self.heap += o.len().next_multiple_of(16) + 32;
                self.originals.push(o);
                let s = &mut self.slots[i];
                *s = Slot {
                    key,
                    original: (self.originals.len() - 1) as u32,
                    ..EMPTY
                };
                return (s, self.originals.last_mut().expect("pushed"));
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, Slots::new(n));
        let mask = self.slots.len() - 1;
        for s in old.iter().filter(|s| s.key != 0) {
            let mut i = self.home(s.key);
            while self.slots[i].key != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = *s;
        }
    }

    /// The occupied slots with their spellings, in no particular order.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (Slot, Box<str>)> {
        let mut originals = self.originals;
        let slots = self.slots;
        (0..slots.len())
            .map(move |i| slots[i])
            .filter(|s| s.key != 0)
            .map(move |s| (s, std::mem::take(&mut originals[s.original as usize])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_growth_and_key_zero() {
        let mut t = Shard::default();
        let n = 20_000u128;
        for _ in 0..3 {
            for k in 0..n {
                t.slot(k * 0x9e37_79b9_7f4a_7c15, &format!("/{k}")).0.count += 1;
            }
        }
        // key 0 is stored as 1: the two meet
        t.slot(1, "/one").0.count += 1;
        assert_eq!(t.len(), n as usize);
        let entries: Vec<(Slot, Box<str>)> = t.into_entries().collect();
        assert_eq!(entries.len(), n as usize);
        let one = entries.iter().find(|(s, _)| s.key == 1).unwrap();
        assert_eq!((one.0.count, &*one.1), (4, "/0"));
        assert!(
            entries
                .iter()
                .filter(|(s, _)| s.key != 1)
                .all(|(s, _)| s.count == 3)
        );
    }
}
