//! A stable 64-bit hash (FNV-1a) for digests that nodes compare: the same bytes give the same
//! value on every node, build and platform (unlike `std`'s randomly keyed hasher).

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub struct StableHash(u64);

impl Default for StableHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHash {
    /// Adds bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// Adds a string, length-prefixed (so `("ab", "c")` and `("a", "bc")` differ).
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }

    /// Adds a number.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The stable hash of a string (a service's id on the wire).
pub fn of_str(s: &str) -> u64 {
    StableHash::default().str(s).finish()
}
