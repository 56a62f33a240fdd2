//! Random payloads, written through the writer so that their checksums are valid:
//! decoding must return a result, never panic.

use super::*;

/// xorshift64*: a small deterministic generator.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Damages `payload` in one of several ways.
fn mutate(rng: &mut Prng, payload: &mut Vec<u8>) {
    match rng.below(7) {
        // A few bit flips.
        0 => {
            for _ in 0..=rng.below(4) {
                if !payload.is_empty() {
                    let at = rng.below(payload.len());
                    payload[at] ^= 1 << rng.below(8);
                }
            }
        }
        // Cut short.
        1 => {
            let keep = rng.below(payload.len() + 1);
            payload.truncate(keep);
        }
        // Replaced by random bytes, keeping the version word half of the time.
        2 => {
            let keep = if rng.below(2) == 0 { 4 } else { 0 };
            let length = rng.below(700);
            payload.truncate(keep.min(payload.len()));
            payload.extend((0..length).map(|_| rng.byte()));
        }
        // Random bytes appended.
        3 => payload.extend((0..=rng.below(16)).map(|_| rng.byte())),
        // One byte set to an extreme value (lengths, tags and varints).
        4 => {
            if !payload.is_empty() {
                let at = rng.below(payload.len());
                payload[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
            }
        }
        // A run of bytes overwritten.
        5 => {
            if !payload.is_empty() {
                let at = rng.below(payload.len());
                let end = (at + 1 + rng.below(32)).min(payload.len());
                for byte in &mut payload[at..end] {
                    *byte = rng.byte();
                }
            }
        }
        // Bytes inserted.
        _ => {
            let at = rng.below(payload.len() + 1);
            for _ in 0..=rng.below(8) {
                payload.insert(at, rng.byte());
            }
        }
    }
}

/// The fixture with no stored RAM, so that every case writes only state chunks.
fn stateful_chunks() -> Vec<Chunk> {
    let mut m = machine();
    m.metadata.memory = MemorySummary {
        pages: 0,
        stored_pages: 0,
        chunks: 0,
    };
    chunks(&m)
}

#[test]
fn random_payloads_never_panic() {
    let base = stateful_chunks();
    let mut rng = Prng(0x9e37_79b9_7f4a_7c15);
    let mut disk = MemoryDisk::new(DISK_SECTORS);
    let mut refused = 0;
    let cases = 3000;
    for _ in 0..cases {
        let mut chunks = base.clone();
        for _ in 0..=rng.below(2) {
            let victim = rng.below(chunks.len());
            mutate(&mut rng, &mut chunks[victim].2);
        }
        // Now and then, move a chunk to another id or kind as well.
        if rng.below(8) == 0 {
            let victim = rng.below(chunks.len());
            chunks[victim].1 = [0, 1, 2, UART, GIC, u64::MAX][rng.below(6)];
        }
        if rng.below(16) == 0 {
            let victim = rng.below(chunks.len());
            chunks[victim].0 =
                [ChunkKind::Metadata, ChunkKind::Vcpu, ChunkKind::Device][rng.below(3)];
        }
        let snapshot = write_to(&mut disk, &chunks, RAM_BASE, &[]);
        match SavedMachine::from_snapshot(&snapshot) {
            Ok(machine) => {
                // Whatever was accepted passed every check and re-encodes.
                for vcpu in &machine.vcpus {
                    vcpu.check().unwrap();
                }
                machine.check_devices().unwrap();
            }
            Err(error) => {
                // Every refusal has a message.
                assert!(!alloc::format!("{error}").is_empty());
                refused += 1;
            }
        }
    }
    // Nearly every case damages something that matters.
    assert!(refused > cases / 2, "only {refused} of {cases} refused");
}

#[test]
fn random_bytes_never_decode_as_a_whole_machine_state_without_checks() {
    let mut rng = Prng(0x0123_4567_89ab_cdef);
    for _ in 0..3000 {
        let length = rng.below(64);
        let mut payload = Vec::from(STATE_VERSION.to_le_bytes());
        payload.extend((0..length).map(|_| rng.byte()));
        let _ = decode_device(&payload);
        if let Ok(vcpu) = decode_vcpu(&payload) {
            vcpu.check().unwrap();
        }
        let _ = decode_metadata(&payload[4..]);
    }
}
