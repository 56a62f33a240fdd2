//! `overlays/disable-bt.dtbo` for the Raspberry Pi 4: a device-tree overlay that
//! gives the PL011 (UART0) to the console and turns Bluetooth off.
//!
//! The firmware applies the overlays `config.txt` names (`dtoverlay=disable-bt`) to
//! the board's device tree before it starts Aerie. Raspberry Pi's own `disable-bt`
//! overlay addresses nodes by label (`target = <&uart0>`), which only resolves
//! against a tree built with symbols (`dtc -@`); Debian's `bcm2711-rpi-4-b.dtb` has
//! none. This one makes the same change with `target-path` fragments, which need no
//! symbols (overlay format: Linux `Documentation/devicetree/overlay-notes.rst`; the
//! firmware's `target-path` support: Raspberry Pi documentation, "Device Trees,
//! overlays and parameters", fragments):
//!
//! | fragment | node | change |
//! |---|---|---|
//! | 0 | `/soc/serial@7e215040` (UART1, the mini UART) | `status = "disabled"` |
//! | 1 | `/soc/serial@7e201000/bluetooth` | `status = "disabled"` |
//! | 2 | `/soc/serial@7e201000` (UART0, the PL011) | `status = "okay"` |
//! | 3 | `/aliases` | `serial0` = the PL011, `serial1` = the mini UART |
//! | 4 | `/chosen` | `stdout-path = "serial0:115200n8"`: the console is the PL011 |
//!
//! The paths are those of both Debian's (mainline Linux) and Raspberry Pi's Pi 4
//! trees. The last fragment goes beyond the original overlay: mainline's tree names
//! the mini UART as the console, and Aerie takes the PL011 that `stdout-path` names.

/// The overlay's path on the card (the firmware looks in `overlays/`).
pub const DISABLE_BT_FILE: &str = "overlays/disable-bt.dtbo";

/// The Pi 4's PL011, UART0 (BCM2711 peripherals at bus address 0x7e20_1000).
pub const PL011_PATH: &str = "/soc/serial@7e201000";
/// The Pi 4's mini UART, UART1 (bus address 0x7e21_5040).
pub const MINI_UART_PATH: &str = "/soc/serial@7e215040";
/// The Bluetooth controller, a child of the PL011 in the Pi 4's device trees.
pub const BLUETOOTH_PATH: &str = "/soc/serial@7e201000/bluetooth";
/// The console the overlay names in `/chosen`: the PL011 at 115200 8N1.
pub const STDOUT_PATH: &str = "serial0:115200n8";

/// One property an overlay fragment sets: a name and a string value.
type StringProperty = (&'static str, &'static str);

/// The fragments, in order: the node each targets and the string properties it sets.
const FRAGMENTS: [(&str, &[StringProperty]); 5] = [
    (MINI_UART_PATH, &[("status", "disabled")]),
    (BLUETOOTH_PATH, &[("status", "disabled")]),
    (PL011_PATH, &[("status", "okay")]),
    (
        "/aliases",
        &[("serial0", PL011_PATH), ("serial1", MINI_UART_PATH)],
    ),
    ("/chosen", &[("stdout-path", STDOUT_PATH)]),
];

/// The compatible string of the board the overlay is for (the firmware skips an
/// overlay whose root `compatible` does not match the board).
const COMPATIBLE: &str = "brcm,bcm2711";

/// The overlay blob (a flattened device tree).
pub fn disable_bt() -> Vec<u8> {
    let mut tree = FdtBuilder::default();
    tree.begin_node("");
    tree.string_property("compatible", COMPATIBLE);
    for (n, (target, properties)) in FRAGMENTS.iter().enumerate() {
        tree.begin_node(&format!("fragment@{n}"));
        tree.string_property("target-path", target);
        tree.begin_node("__overlay__");
        for (name, value) in *properties {
            tree.string_property(name, value);
        }
        tree.end_node();
        tree.end_node();
    }
    tree.end_node();
    tree.finish()
}

/// The flattened devicetree format (Devicetree Specification v0.4, chapter 5): a
/// header, the memory reservation block, the structure block and the strings block,
/// all big-endian. (A writer of its own: the `__overlay__` node name, which the
/// overlay format requires, is one that general-purpose writers refuse because it
/// does not start with a letter.)
#[derive(Debug, Default)]
struct FdtBuilder {
    structure: Vec<u8>,
    strings: Vec<u8>,
}

/// `FDT_MAGIC` (spec 5.2).
const FDT_MAGIC: u32 = 0xd00d_feed;
/// The format version written, and the oldest it is compatible with (spec 5.2).
const FDT_VERSION: u32 = 17;
const FDT_LAST_COMP_VERSION: u32 = 16;
/// The header's size: ten 32-bit fields (spec 5.2).
const FDT_HEADER_SIZE: usize = 40;
/// One memory reservation entry (address and size, 64-bit each); the block ends
/// with an all-zero one (spec 5.3).
const FDT_RESERVE_ENTRY_SIZE: usize = 16;
/// Structure block tokens (spec 5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_END: u32 = 0x9;

impl FdtBuilder {
    fn token(&mut self, token: u32) {
        self.structure.extend_from_slice(&token.to_be_bytes());
    }

    /// Pads the structure block to the next 4-byte boundary (spec 5.4.1).
    fn align(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    fn begin_node(&mut self, name: &str) {
        self.token(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.align();
    }

    fn end_node(&mut self) {
        self.token(FDT_END_NODE);
    }

    /// A property whose value is `value` and a terminating NUL.
    fn string_property(&mut self, name: &str, value: &str) {
        let name_offset = self.string_offset(name);
        self.token(FDT_PROP);
        let len = value.len() as u32 + 1;
        self.structure.extend_from_slice(&len.to_be_bytes());
        self.structure.extend_from_slice(&name_offset.to_be_bytes());
        self.structure.extend_from_slice(value.as_bytes());
        self.structure.push(0);
        self.align();
    }

    /// The offset of `name` in the strings block, adding it if new.
    fn string_offset(&mut self, name: &str) -> u32 {
        let mut offset = 0;
        for existing in self.strings.split(|&b| b == 0) {
            if existing == name.as_bytes() && offset < self.strings.len() {
                return offset as u32;
            }
            offset += existing.len() + 1;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        offset
    }

    fn finish(mut self) -> Vec<u8> {
        self.token(FDT_END);
        let reserve_offset = FDT_HEADER_SIZE;
        let struct_offset = reserve_offset + FDT_RESERVE_ENTRY_SIZE;
        let strings_offset = struct_offset + self.structure.len();
        let total = strings_offset + self.strings.len();
        let header = [
            FDT_MAGIC,
            total as u32,
            struct_offset as u32,
            strings_offset as u32,
            reserve_offset as u32,
            FDT_VERSION,
            FDT_LAST_COMP_VERSION,
            0, // boot_cpuid_phys
            self.strings.len() as u32,
            self.structure.len() as u32,
        ];
        let mut blob = Vec::with_capacity(total);
        for field in header {
            blob.extend_from_slice(&field.to_be_bytes());
        }
        blob.extend_from_slice(&[0; FDT_RESERVE_ENTRY_SIZE]);
        blob.extend_from_slice(&self.structure);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string property's value without its NUL terminator.
    fn string<'a>(node: &fdt::node::FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
        node.property(name)?.as_str()
    }

    #[test]
    fn the_overlay_is_a_valid_tree_with_path_targeted_fragments() {
        let blob = disable_bt();
        let tree = fdt::Fdt::new(&blob).unwrap();
        let root = tree.find_node("/").unwrap();
        assert_eq!(string(&root, "compatible"), Some("brcm,bcm2711"));
        let targets: Vec<&str> = root
            .children()
            .map(|fragment| string(&fragment, "target-path").unwrap())
            .collect();
        assert_eq!(
            targets,
            [
                "/soc/serial@7e215040",
                "/soc/serial@7e201000/bluetooth",
                "/soc/serial@7e201000",
                "/aliases",
                "/chosen"
            ]
        );
        // No fragment uses a label target: the tree needs no __fixups__.
        assert!(tree.find_node("/__fixups__").is_none());
        assert!(root.children().all(|f| f.property("target").is_none()));
    }

    #[test]
    fn bluetooth_and_the_mini_uart_go_off_and_the_pl011_becomes_the_console() {
        let blob = disable_bt();
        let tree = fdt::Fdt::new(&blob).unwrap();
        let overlay = |n: usize| {
            tree.find_node(&format!("/fragment@{n}/__overlay__"))
                .unwrap()
        };
        assert_eq!(string(&overlay(0), "status"), Some("disabled"));
        assert_eq!(string(&overlay(1), "status"), Some("disabled"));
        assert_eq!(string(&overlay(2), "status"), Some("okay"));
        assert_eq!(string(&overlay(3), "serial0"), Some("/soc/serial@7e201000"));
        assert_eq!(string(&overlay(3), "serial1"), Some("/soc/serial@7e215040"));
        assert_eq!(string(&overlay(4), "stdout-path"), Some("serial0:115200n8"));
    }

    #[test]
    fn the_header_describes_the_blocks() {
        let blob = disable_bt();
        let field = |n: usize| u32::from_be_bytes(blob[n * 4..n * 4 + 4].try_into().unwrap());
        assert_eq!(field(0), 0xd00d_feed, "magic");
        assert_eq!(field(1) as usize, blob.len(), "totalsize");
        assert_eq!(field(4), 40, "the reservation block follows the header");
        assert_eq!(
            field(2),
            56,
            "the structure block follows one empty reservation"
        );
        assert_eq!(
            field(3),
            field(2) + field(9),
            "strings follow the structure"
        );
        assert_eq!(
            (field(5), field(6)),
            (17, 16),
            "version 17, compatible with 16"
        );
        assert_eq!(blob[40..56], [0; 16]);
        // Each property name is stored once.
        let strings = &blob[field(3) as usize..];
        assert_eq!(
            strings,
            b"compatible\0target-path\0status\0serial0\0serial1\0stdout-path\0"
        );
    }
}
