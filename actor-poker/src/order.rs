//! An order-statistic set: insert, remove, rank and select in O(log n).
//!
//! Sorted blocks of at most `2 * B` keys, with a Fenwick tree over the block lengths. Finding a
//! key is a binary search over the blocks' maxima and then inside one block; rank adds the
//! Fenwick prefix of the blocks before it; select descends the Fenwick tree. Inserting into or
//! removing from a block moves at most `2 * B` keys (a constant). A block that grows past `2 * B`
//! is split and the index is rebuilt, which amortizes to O(1) per insert. For the sizes we run
//! (1,000 to 100,000 keys) this is a few cache lines per operation, several times faster than
//! a pointer-based balanced tree.

const B: usize = 64;

/// A set of `u128` keys, ascending, with rank and select.
#[derive(Debug, Clone, Default)]
pub struct OrderStat {
    blocks: Vec<Vec<u128>>,
    maxes: Vec<u128>,
    tree: Vec<u32>,
    len: usize,
}

impl OrderStat {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the set from keys in any order (duplicates are kept once).
    pub fn from_keys(mut keys: Vec<u128>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        let len = keys.len();
        let blocks: Vec<Vec<u128>> = keys.chunks(B).map(<[u128]>::to_vec).collect();
        let mut s = Self {
            blocks,
            maxes: Vec::new(),
            tree: Vec::new(),
            len,
        };
        s.rebuild();
        s
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes on the heap (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Vec<u128>>()
            + self
                .blocks
                .iter()
                .map(|b| b.capacity() * std::mem::size_of::<u128>())
                .sum::<usize>()
            + self.maxes.capacity() * std::mem::size_of::<u128>()
            + self.tree.capacity() * std::mem::size_of::<u32>()
    }

    fn rebuild(&mut self) {
        self.maxes = self
            .blocks
            .iter()
            .map(|b| b.last().copied().unwrap_or(0))
            .collect();
        let n = self.blocks.len();
        self.tree = vec![0; n + 1];
        for i in 0..n {
            let j = i + 1;
            self.tree[j] += self.blocks[i].len() as u32;
            let parent = j + (j & j.wrapping_neg());
            if parent <= n {
                let v = self.tree[j];
                self.tree[parent] += v;
            }
        }
    }

    fn tree_add(&mut self, block: usize, delta: i32) {
        let mut j = block + 1;
        while j < self.tree.len() {
            self.tree[j] = self.tree[j].wrapping_add_signed(delta);
            j += j & j.wrapping_neg();
        }
    }

    /// Number of keys in blocks `0..block`.
    fn prefix(&self, block: usize) -> usize {
        let mut j = block;
        let mut sum = 0usize;
        while j > 0 {
            sum += self.tree[j] as usize;
            j &= j - 1;
        }
        sum
    }

    /// The block that holds `key` or would: the first whose maximum is `>= key` (the last block
    /// for a key above every maximum).
    fn block_for(&self, key: u128) -> usize {
        let i = self.maxes.partition_point(|m| *m < key);
        i.min(self.blocks.len().saturating_sub(1))
    }

    /// Inserts `key`; false if it was there.
    pub fn insert(&mut self, key: u128) -> bool {
        if self.blocks.is_empty() {
            self.blocks.push(vec![key]);
            self.len = 1;
            self.rebuild();
            return true;
        }
        let i = self.block_for(key);
        let block = &mut self.blocks[i];
        let pos = match block.binary_search(&key) {
            Ok(_) => return false,
            Err(p) => p,
        };
        block.insert(pos, key);
        if pos + 1 == block.len() {
            self.maxes[i] = key;
        }
        self.len += 1;
        if block.len() > 2 * B {
            let tail = block.split_off(B);
            self.blocks.insert(i + 1, tail);
            self.rebuild();
        } else {
            self.tree_add(i, 1);
        }
        true
    }

    /// Removes `key`; false if it was not there.
    pub fn remove(&mut self, key: u128) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let i = self.block_for(key);
        let Ok(pos) = self.blocks[i].binary_search(&key) else {
            return false;
        };
        self.remove_at(i, pos);
        true
    }

    fn remove_at(&mut self, i: usize, pos: usize) {
        let block = &mut self.blocks[i];
        block.remove(pos);
        self.len -= 1;
        if block.is_empty() {
            self.blocks.remove(i);
            self.rebuild();
        } else {
            if pos == block.len() {
                self.maxes[i] = block[pos - 1];
            }
            self.tree_add(i, -1);
        }
    }

    /// Replaces `old` by `new` (false, and no change, if `old` is absent or `new` present).
    /// When both belong to the same block, only the keys between them move and the index is
    /// untouched: the common case of a stack that changes a little.
    pub fn replace(&mut self, old: u128, new: u128) -> bool {
        if old == new || self.blocks.is_empty() {
            return old == new && self.rank(old).is_some();
        }
        let i = self.block_for(old);
        let Ok(p) = self.blocks[i].binary_search(&old) else {
            return false;
        };
        // `new` may stay in this block if it sorts after the previous block and before the
        // next one.
        let fits = (i == 0 || new > self.maxes[i - 1])
            && self
                .blocks
                .get(i + 1)
                .is_none_or(|b| b.first().is_none_or(|f| new < *f));
        if !fits {
            self.remove_at(i, p);
            if self.insert(new) {
                return true;
            }
            self.insert(old);
            return false;
        }
        let block = &mut self.blocks[i];
        if new > old {
            let q = match block[p + 1..].binary_search(&new) {
                Ok(_) => return false,
                Err(k) => p + k,
            };
            block.copy_within(p + 1..=q, p);
            block[q] = new;
        } else {
            let q = match block[..p].binary_search(&new) {
                Ok(_) => return false,
                Err(q) => q,
            };
            block.copy_within(q..p, q + 1);
            block[q] = new;
        }
        if let Some(last) = block.last() {
            self.maxes[i] = *last;
        }
        true
    }

    /// The 0-based position of `key`, if present.
    pub fn rank(&self, key: u128) -> Option<usize> {
        if self.blocks.is_empty() {
            return None;
        }
        let i = self.block_for(key);
        let pos = self.blocks[i].binary_search(&key).ok()?;
        Some(self.prefix(i) + pos)
    }

    /// Block and offset of the key at 0-based position `idx`.
    fn locate(&self, idx: usize) -> Option<(usize, usize)> {
        if idx >= self.len {
            return None;
        }
        let n = self.blocks.len();
        let mut pos = 0usize;
        let mut rem = idx;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && (self.tree[next] as usize) <= rem {
                pos = next;
                rem -= self.tree[next] as usize;
            }
            step >>= 1;
        }
        Some((pos, rem))
    }

    /// The key at 0-based position `idx`.
    pub fn select(&self, idx: usize) -> Option<u128> {
        let (b, o) = self.locate(idx)?;
        self.blocks.get(b)?.get(o).copied()
    }

    /// Keys from position `start`, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = u128> + '_ {
        let (b, o) = self.locate(start).unwrap_or((self.blocks.len(), 0));
        self.blocks
            .iter()
            .skip(b)
            .enumerate()
            .flat_map(move |(k, blk)| blk.iter().skip(if k == 0 { o } else { 0 }))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn agrees_with_a_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u128..600), 0..3000)) {
            let mut s = OrderStat::new();
            let mut r = BTreeSet::new();
            for (ins, k) in ops {
                if ins && k % 3 == 0 && !r.is_empty() {
                    // A replace of the n-th key by k.
                    let old = *r.iter().nth((k as usize * 7) % r.len()).unwrap();
                    let ok = old == k || !r.contains(&k);
                    prop_assert_eq!(s.replace(old, k), ok);
                    if ok {
                        r.remove(&old);
                        r.insert(k);
                    }
                } else if ins {
                    prop_assert_eq!(s.insert(k), r.insert(k));
                } else {
                    prop_assert_eq!(s.remove(k), r.remove(&k));
                }
                prop_assert_eq!(s.len(), r.len());
            }
            let v: Vec<u128> = r.iter().copied().collect();
            for (i, k) in v.iter().enumerate() {
                prop_assert_eq!(s.rank(*k), Some(i));
                prop_assert_eq!(s.select(i), Some(*k));
            }
            prop_assert_eq!(s.select(v.len()), None);
            prop_assert_eq!(s.rank(10_000), None);
            let from: Vec<u128> = s.iter_from(v.len() / 2).collect();
            prop_assert_eq!(&from[..], &v[v.len() / 2..]);
            let built = OrderStat::from_keys(v.clone());
            prop_assert_eq!(built.iter_from(0).collect::<Vec<_>>(), v);
        }
    }
}
