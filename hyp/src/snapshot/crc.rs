//! CRC-32 (IEEE 802.3, the zlib/PNG/gzip CRC): reflected polynomial `0xEDB8_8320`,
//! initial value and final XOR `0xFFFF_FFFF`.
//!
//! A table-driven implementation that takes eight bytes per step ("slicing by
//! eight": eight 256-entry tables, each advancing the CRC by one more byte), which
//! matters when a snapshot checksums hundreds of MiB. The `crc32fast` crate was tried first,
//! but on `aarch64-unknown-none-softfloat` it enables the `neon` target feature, which
//! rustc flags as unsound for that ABI (and Aerie never touches FP/SIMD at EL2).

/// The reflected CRC-32 polynomial (IEEE 802.3).
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// The 256-entry lookup table, built at compile time.
const TABLE: [u32; 256] = build_table();

/// `TABLES[k][b]`: the CRC contribution of byte `b` followed by `k` zero bytes.
const TABLES: [[u32; 256]; 8] = build_slicing_tables();

const fn build_slicing_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    tables[0] = TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let previous = tables[k - 1][i];
            tables[k][i] = (previous >> 8) ^ TABLE[(previous & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut value = i as u32;
        let mut bit = 0;
        while bit < 8 {
            value = if value & 1 != 0 {
                (value >> 1) ^ POLYNOMIAL
            } else {
                value >> 1
            };
            bit += 1;
        }
        table[i] = value;
        i += 1;
    }
    table
}

/// An incremental CRC-32 computation.
#[derive(Clone, Copy, Debug)]
pub struct Crc32 {
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh computation (no bytes seen yet).
    pub const fn new() -> Self {
        Self { state: 0xFFFF_FFFF }
    }

    /// Feeds `bytes` into the computation.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut state = self.state;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let low = u32::from_le_bytes([word[0], word[1], word[2], word[3]]) ^ state;
            let high = u32::from_le_bytes([word[4], word[5], word[6], word[7]]);
            let t =
                |k: usize, value: u32, shift: u32| TABLES[k][((value >> shift) & 0xFF) as usize];
            state = t(7, low, 0)
                ^ t(6, low, 8)
                ^ t(5, low, 16)
                ^ t(4, low, 24)
                ^ t(3, high, 0)
                ^ t(2, high, 8)
                ^ t(1, high, 16)
                ^ t(0, high, 24);
        }
        for &byte in words.remainder() {
            state = TABLE[((state ^ u32::from(byte)) & 0xFF) as usize] ^ (state >> 8);
        }
        self.state = state;
    }

    /// The CRC of everything fed so far.
    pub const fn finish(self) -> u32 {
        self.state ^ 0xFFFF_FFFF
    }
}

/// The CRC-32 of `bytes` in one go.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The standard check value of CRC-32/ISO-HDLC: CRC of ASCII "123456789"
        // (Williams, "A Painless Guide to CRC Error Detection Algorithms", and the
        // RevEng CRC catalogue).
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn incremental_matches_one_shot() {
        let data: std::vec::Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut crc = Crc32::new();
        for part in data.chunks(37) {
            crc.update(part);
        }
        assert_eq!(crc.finish(), crc32(&data));
    }

    /// The CRC computed one bit at a time, straight from the definition.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut state = 0xFFFF_FFFFu32;
        for &byte in bytes {
            state ^= u32::from(byte);
            for _ in 0..8 {
                state = if state & 1 != 0 {
                    (state >> 1) ^ POLYNOMIAL
                } else {
                    state >> 1
                };
            }
        }
        !state
    }

    #[test]
    fn eight_bytes_at_a_time_matches_the_definition() {
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 131 + 17) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(crc32(&data[start..end]), bitwise(&data[start..end]));
            }
        }
    }

    #[test]
    fn blank_detection_sees_every_byte() {
        use super::super::layout::is_blank;
        let mut page = [0u8; 4096 + 5];
        assert!(is_blank(&page));
        for at in [0, 7, 8, 4095, 4096, 4100] {
            page[at] = 1;
            assert!(!is_blank(&page), "byte {at}");
            page[at] = 0;
        }
    }
}
