//! Python's `random.Random` (Mersenne Twister MT19937), so that `random(seed=...)` and
//! `shuffle(seed=...)` give exactly Ansible's results for the same seed.
//!
//! It owns the generator, Python's seeding of strings and integers (`random.seed` version 2:
//! a string seed is its UTF-8 bytes followed by their SHA-512, read as one big integer), and
//! `randrange`/`choice`/`shuffle` as CPython 3.11 draws them (`_randbelow_with_getrandbits`).
//! It must not be used for anything secret: unseeded draws use the OS generator instead.

use sha2::Digest as _;

const N: usize = 624;
const M: usize = 397;

/// A seeded Python `random.Random`.
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

/// A seed as Python's `random.seed` accepts it here.
pub enum Seed<'a> {
    Str(&'a str),
    Int(i128),
}

impl PyRandom {
    /// `random.Random(seed)`.
    pub fn new(seed: Seed<'_>) -> PyRandom {
        let key = match seed {
            Seed::Str(s) => {
                let mut bytes = s.as_bytes().to_vec();
                bytes.extend_from_slice(&sha2::Sha512::digest(s.as_bytes()));
                big_endian_words(&bytes)
            }
            Seed::Int(i) => {
                let mut n = i.unsigned_abs();
                let mut words = Vec::new();
                while n > 0 {
                    words.push((n & 0xffff_ffff) as u32);
                    n >>= 32;
                }
                if words.is_empty() {
                    words.push(0);
                }
                words
            }
        };
        let mut r = PyRandom {
            mt: [0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            for k in 0..N {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % N] & 0x7fff_ffff);
                let mut v = self.mt[(k + M) % N] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k <= 128`.
    fn getrandbits(&mut self, k: u32) -> u128 {
        if k <= 32 {
            return u128::from(self.next_u32() >> (32 - k));
        }
        let mut out = 0u128;
        let mut shift = 0;
        let mut left = k;
        while left > 0 {
            let mut r = self.next_u32();
            if left < 32 {
                r >>= 32 - left;
            }
            out |= u128::from(r) << shift;
            shift += 32;
            left = left.saturating_sub(32);
        }
        out
    }

    /// `_randbelow(n)` (`n > 0`).
    pub fn below(&mut self, n: u128) -> u128 {
        let k = 128 - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// `shuffle(x)`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.below(i as u128 + 1) as usize;
            x.swap(i, j);
        }
    }
}

/// The 32-bit words of a big-endian byte string read as one integer, least significant first.
fn big_endian_words(bytes: &[u8]) -> Vec<u32> {
    let mut words: Vec<u32> = bytes
        .rchunks(4)
        .map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        .collect();
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    words
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn matches_cpython_for_string_and_int_seeds() {
        // python3 -c "import random; r=random.Random('abc'); print([r.getrandbits(32) for _ in range(3)])"
        let mut r = PyRandom::new(Seed::Str("abc"));
        let got: Vec<u128> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, ABC);
        let mut r = PyRandom::new(Seed::Int(42));
        let got: Vec<u128> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, FORTY_TWO);
    }

    const ABC: [u128; 3] = [3_315_820_543, 4_246_262_336, 2_397_318_194];
    const FORTY_TWO: [u128; 3] = [2_746_317_213, 478_163_327, 107_420_369];
}
