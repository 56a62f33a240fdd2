//! The bounded stable-Rust run of a fuzz target: a fixed number of pseudo-random
//! inputs, made deterministically from a seed, so that `cargo test` fuzzes every
//! target for a few seconds and a failure is reproducible.
//!
//! Inputs are random bytes for targets that read operations from their input
//! ([`super::Input`]), and mutations of seed inputs (real device trees, bundles,
//! snapshots) for targets that parse a file format: bit flips, overwritten bytes,
//! interesting 32-bit values (either byte order) at aligned offsets, lengths nudged
//! by a little, truncation, deletion, insertion, duplication and splicing with
//! another seed. Several mutations are stacked, and a quarter of the inputs mutate
//! the previous input further. There is no coverage guidance; the libFuzzer targets
//! in `fuzz/` run the same bodies with it.
//!
//! Two environment variables tune a run:
//!
//! | variable | effect |
//! |---|---|
//! | [`ITERATIONS_VARIABLE`] (`AERIE_FUZZ_ITERATIONS`) | inputs per target instead of the target's CI default, e.g. `1000000` for a long local run |
//! | [`SEED_VARIABLE`] (`AERIE_FUZZ_SEED`) | the generator's seed (decimal or `0x` hex) instead of one fixed per target, to explore other inputs |
//!
//! When a body panics, the input is written to the system's temporary directory and
//! its path printed with the seed and the input's number, before the test fails.
//! Inputs that once failed are kept in `fuzz/regressions/<target>/` (one file each);
//! [`Target::run`] replays them first, every time.

use alloc::vec::Vec;
use std::string::String;

/// The environment variable that sets how many inputs each target runs.
pub const ITERATIONS_VARIABLE: &str = "AERIE_FUZZ_ITERATIONS";
/// The environment variable that sets the generator's seed.
pub const SEED_VARIABLE: &str = "AERIE_FUZZ_SEED";

/// A small deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (zero when `bound` is zero).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// One target's bounded run.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The target's name, as in `fuzz/` (seeds the generator and names a crash).
    pub name: &'static str,
    /// Inputs to run when [`ITERATIONS_VARIABLE`] is not set: what keeps the target
    /// to a few seconds in CI.
    pub iterations: u64,
    /// The longest input to make.
    pub max_len: usize,
    /// Valid inputs to mutate; none for targets fed random bytes.
    pub seeds: &'a [&'a [u8]],
}

/// 32-bit values that make parsers take their edge cases: zero, one, small counts,
/// powers of two and their neighbours, sign bits, all ones.
const INTERESTING: [u32; 16] = [
    0,
    1,
    2,
    3,
    4,
    8,
    9,
    16,
    0x7F,
    0x80,
    0xFF,
    0x1000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    u32::MAX,
];

impl Target<'_> {
    /// Runs `body` on each input and returns how many it ran. A panic in `body` fails
    /// the caller (a test) after reporting the input.
    ///
    /// The inputs in [`regressions`](Self::regressions) run first.
    pub fn run(&self, mut body: impl FnMut(&[u8])) -> u64 {
        for (path, input) in self.regressions() {
            std::eprintln!("fuzz {}: replaying {}", self.name, path.display());
            body(&input);
        }
        let iterations = variable(ITERATIONS_VARIABLE).unwrap_or(self.iterations);
        let seed = variable(SEED_VARIABLE).unwrap_or_else(|| name_hash(self.name));
        let mut random = Random::new(seed);
        let mut input = Vec::new();
        let started = std::time::Instant::now();
        for iteration in 0..iterations {
            input = self.generate(&mut random, input);
            let witness = Witness {
                target: self.name,
                seed,
                iteration,
                input: &input,
            };
            body(&input);
            drop(witness);
        }
        std::eprintln!(
            "fuzz {}: {iterations} inputs (seed {seed:#x}) in {:.1?}",
            self.name,
            started.elapsed()
        );
        iterations
    }

    /// The inputs that once made this target fail, with their paths: the files in
    /// `fuzz/regressions/<name>/`, by name (none if the directory does not exist).
    pub fn regressions(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions")
            .join(self.name);
        let Ok(entries) = std::fs::read_dir(&directory) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries
            .map(|entry| entry.expect("a readable directory").path())
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let input =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (path, input)
            })
            .collect()
    }

    /// The next input: random bytes, a mutated seed, or the previous input mutated
    /// further.
    fn generate(&self, random: &mut Random, previous: Vec<u8>) -> Vec<u8> {
        if self.seeds.is_empty() || random.below(16) == 0 {
            let len = random.below(self.max_len + 1);
            return (0..len).map(|_| random.byte()).collect();
        }
        let mut bytes = if previous.is_empty() || random.below(4) != 0 {
            self.seeds[random.below(self.seeds.len())].to_vec()
        } else {
            previous
        };
        for _ in 0..=random.below(4) {
            mutate(random, &mut bytes, self.seeds);
        }
        bytes.truncate(self.max_len);
        bytes
    }
}

/// Changes `bytes` in one random way; `seeds` supply material for splicing.
pub fn mutate(random: &mut Random, bytes: &mut Vec<u8>, seeds: &[&[u8]]) {
    let len = bytes.len();
    // A short range of the input: where, and how long (at least one byte when the
    // input is not empty).
    let span = |random: &mut Random| {
        let start = random.below(len);
        let max = (len - start.min(len)).min(if random.below(8) == 0 { len } else { 64 });
        (start, 1 + random.below(max.max(1)))
    };
    match random.below(10) {
        0 if len > 0 => {
            for _ in 0..=random.below(8) {
                let at = random.below(len);
                bytes[at] ^= 1 << random.below(8);
            }
        }
        1 if len > 0 => {
            for _ in 0..=random.below(16) {
                let at = random.below(len);
                bytes[at] = random.byte();
            }
        }
        2 if len >= 4 => {
            let at = random.below(len / 4) * 4;
            let value = INTERESTING[random.below(INTERESTING.len())];
            let word = if random.below(2) == 0 {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            bytes[at..at + 4].copy_from_slice(&word);
        }
        3 if len >= 4 => {
            // A big-endian length or count nudged by a little.
            let at = random.below(len / 4) * 4;
            let word = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let delta = 1 + random.below(16) as u32;
            let word = if random.below(2) == 0 {
                word.wrapping_add(delta)
            } else {
                word.wrapping_sub(delta)
            };
            bytes[at..at + 4].copy_from_slice(&word.to_be_bytes());
        }
        4 => bytes.truncate(random.below(len + 1)),
        5 if len > 0 => {
            let (start, count) = span(random);
            bytes.drain(start..(start + count).min(len));
        }
        6 => {
            let at = random.below(len + 1);
            let inserted: Vec<u8> = if len > 0 && random.below(2) == 0 {
                let (start, count) = span(random);
                bytes[start..(start + count).min(len)].to_vec()
            } else {
                (0..1 + random.below(64)).map(|_| random.byte()).collect()
            };
            bytes.splice(at..at, inserted);
        }
        7 if !seeds.is_empty() => {
            let other = seeds[random.below(seeds.len())];
            let from = random.below(other.len() + 1);
            bytes.truncate(random.below(len + 1));
            bytes.extend_from_slice(&other[from..]);
        }
        8 if len > 1 => {
            let (start, count) = span(random);
            let count = count.min(len - start);
            let to = random.below(len - count + 1);
            bytes.copy_within(start..start + count, to);
        }
        _ if len > 0 => {
            let at = random.below(len);
            bytes[at] = INTERESTING[random.below(INTERESTING.len())] as u8;
        }
        _ => bytes.push(random.byte()),
    }
}

/// Reports the input a body panicked on, when dropped during the unwinding.
struct Witness<'a> {
    target: &'static str,
    seed: u64,
    iteration: u64,
    input: &'a [u8],
}

impl Drop for Witness<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let file = std::format!(
            "aerie-fuzz-{}-{:x}-{}.bin",
            self.target,
            self.seed,
            self.iteration
        );
        let path = std::env::temp_dir().join(file);
        let saved = match std::fs::write(&path, self.input) {
            Ok(()) => std::format!("saved as {}", path.display()),
            Err(error) => std::format!("not saved ({error})"),
        };
        std::eprintln!(
            "fuzz {}: panicked on input {} ({} bytes, {saved}); reproduce with \
             {SEED_VARIABLE}={:#x} {ITERATIONS_VARIABLE}={}",
            self.target,
            self.iteration,
            self.input.len(),
            self.seed,
            self.iteration + 1,
        );
    }
}

/// A number from the environment variable `name` (decimal, or hex with `0x`).
fn variable(name: &str) -> Option<u64> {
    let text: String = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    match parsed {
        Ok(value) => Some(value),
        Err(_) => panic!("{name}={text:?} is not a number"),
    }
}

/// FNV-1a of `name`: a different fixed seed for every target.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_stay_bounded() {
        let seeds: [&[u8]; 2] = [b"0123456789abcdef", b""];
        let target = Target {
            name: "self-test",
            iterations: 0,
            max_len: 40,
            seeds: &seeds,
        };
        let (mut a, mut b) = (Random::new(1), Random::new(1));
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..2000 {
            x = target.generate(&mut a, x);
            y = target.generate(&mut b, y);
            assert_eq!(x, y);
            assert!(x.len() <= 40);
        }
    }

    #[test]
    fn every_mutation_copes_with_empty_and_tiny_inputs() {
        let mut random = Random::new(7);
        for len in 0..6 {
            for _ in 0..500 {
                let mut bytes = alloc::vec![0xAA; len];
                mutate(&mut random, &mut bytes, &[]);
                mutate(&mut random, &mut bytes, &[b"xy"]);
            }
        }
    }
}
