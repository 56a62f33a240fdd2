//! [`DtbEditor`]: read a flattened device tree into an owned tree, edit it, write it.
//!
//! Reading uses the `fdt` crate, writing rust-vmm's `vm-fdt`. Tests use it to hand
//! Aerie trees QEMU would not produce: a node missing, a property changed.

use std::fmt;

use vm_fdt::{FdtReserveEntry, FdtWriter};

/// One property: its name and raw (big-endian, as in the blob) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property name.
    pub name: String,
    /// The raw value bytes.
    pub value: Vec<u8>,
}

/// One node with its properties and children, in blob order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node name with its unit address (`memory@40000000`); empty for the root.
    pub name: String,
    /// The properties.
    pub properties: Vec<Property>,
    /// The child nodes.
    pub children: Vec<Node>,
}

impl Node {
    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_slice())
    }

    /// Whether the `compatible` string list contains `compatible`.
    pub fn is_compatible(&self, compatible: &str) -> bool {
        self.property("compatible")
            .is_some_and(|list| list.split(|&b| b == 0).any(|s| s == compatible.as_bytes()))
    }

    /// The number of nodes in this subtree, this one included.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Node::count).sum::<usize>()
    }

    /// The child that path component `component` names: an exact name match, else
    /// (for a component without `@`) the first child whose name before `@` matches.
    fn child_index(&self, component: &str) -> Option<usize> {
        let exact = self.children.iter().position(|c| c.name == component);
        exact.or_else(|| {
            if component.contains('@') {
                return None;
            }
            self.children
                .iter()
                .position(|c| c.name.split('@').next() == Some(component))
        })
    }
}

/// A memory reservation (`/memreserve/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Start address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Why a tree could not be read, found or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtbError {
    /// The blob is not a device tree.
    Parse(String),
    /// No node at this path (or the root, where a non-root node is needed).
    NoSuchNode(String),
    /// The node has no such property.
    NoSuchProperty {
        /// The node's path.
        path: String,
        /// The property name.
        name: String,
    },
    /// `vm-fdt` refused the tree.
    Write(String),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtbError::Parse(why) => write!(f, "not a device tree blob: {why}"),
            DtbError::NoSuchNode(path) => write!(f, "no node {path}"),
            DtbError::NoSuchProperty { path, name } => write!(f, "node {path} has no {name}"),
            DtbError::Write(why) => write!(f, "cannot write the device tree: {why}"),
        }
    }
}

impl std::error::Error for DtbError {}

/// An owned, editable device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtbEditor {
    root: Node,
    reservations: Vec<Reservation>,
    boot_cpuid_phys: u32,
}

impl DtbEditor {
    /// Reads a blob: every node and property from the root down, and the memory
    /// reservations. The blob is first checked and stripped of `FDT_NOP` tokens by
    /// Aerie's own `fdt_check` (the `fdt` crate panics on malformed blobs and on NOPs,
    /// which QEMU's raspi4b tree is full of).
    pub fn from_bytes(blob: &[u8]) -> Result<Self, DtbError> {
        let mut blob = blob.to_vec();
        aerie_hyp::fdt_check::validate_and_remove_nops(&mut blob)
            .map_err(|e| DtbError::Parse(e.to_string()))?;
        let blob = blob.as_slice();
        let fdt = fdt::Fdt::new(blob).map_err(|e| DtbError::Parse(format!("{e:?}")))?;
        let root = fdt
            .find_node("/")
            .ok_or_else(|| DtbError::Parse("no root node".to_string()))?;
        let reservations = fdt
            .memory_reservations()
            .map(|r| Reservation {
                address: r.address() as usize as u64,
                size: r.size() as u64,
            })
            .collect();
        let boot_cpuid_phys = u32::from_be_bytes([blob[28], blob[29], blob[30], blob[31]]);
        Ok(Self {
            root: read_node(root),
            reservations,
            boot_cpuid_phys,
        })
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The memory reservations.
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// The node at `path` (`/`, `/cpus/cpu@0`; unit addresses may be left out).
    pub fn node(&self, path: &str) -> Option<&Node> {
        let mut node = &self.root;
        for component in components(path)? {
            node = &node.children[node.child_index(component)?];
        }
        Some(node)
    }

    /// The value of property `name` of the node at `path`.
    pub fn property(&self, path: &str, name: &str) -> Option<&[u8]> {
        self.node(path)?.property(name)
    }

    fn node_mut(&mut self, path: &str) -> Result<&mut Node, DtbError> {
        let missing = || DtbError::NoSuchNode(path.to_string());
        let mut node = &mut self.root;
        for component in components(path).ok_or_else(missing)? {
            let index = node.child_index(component).ok_or_else(missing)?;
            node = &mut node.children[index];
        }
        Ok(node)
    }

    /// Removes the node at `path` with its subtree.
    pub fn remove_node(&mut self, path: &str) -> Result<(), DtbError> {
        let missing = || DtbError::NoSuchNode(path.to_string());
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = trimmed.rsplit_once('/').ok_or_else(missing)?;
        if name.is_empty() {
            return Err(missing());
        }
        let parent = self.node_mut(if parent.is_empty() { "/" } else { parent })?;
        let index = parent.child_index(name).ok_or_else(missing)?;
        parent.children.remove(index);
        Ok(())
    }

    /// Removes every node whose `compatible` list contains `compatible`; returns how
    /// many subtrees were removed.
    pub fn remove_nodes_compatible(&mut self, compatible: &str) -> usize {
        fn prune(node: &mut Node, compatible: &str) -> usize {
            let before = node.children.len();
            node.children
                .retain(|child| !child.is_compatible(compatible));
            let removed = before - node.children.len();
            removed
                + node
                    .children
                    .iter_mut()
                    .map(|c| prune(c, compatible))
                    .sum::<usize>()
        }
        prune(&mut self.root, compatible)
    }

    /// Sets property `name` of the node at `path`, adding it if missing.
    pub fn set_property(&mut self, path: &str, name: &str, value: Vec<u8>) -> Result<(), DtbError> {
        let node = self.node_mut(path)?;
        match node.properties.iter_mut().find(|p| p.name == name) {
            Some(property) => property.value = value,
            None => node.properties.push(Property {
                name: name.to_string(),
                value,
            }),
        }
        Ok(())
    }

    /// Removes property `name` of the node at `path`.
    pub fn remove_property(&mut self, path: &str, name: &str) -> Result<(), DtbError> {
        let node = self.node_mut(path)?;
        let index = node
            .properties
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| DtbError::NoSuchProperty {
                path: path.to_string(),
                name: name.to_string(),
            })?;
        node.properties.remove(index);
        Ok(())
    }

    /// Writes the tree as a blob, with the memory reservations.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DtbError> {
        let write = |e: vm_fdt::Error| DtbError::Write(e.to_string());
        let reservations = self
            .reservations
            .iter()
            .map(|r| FdtReserveEntry::new(r.address, r.size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(write)?;
        let mut writer = FdtWriter::new_with_mem_reserv(&reservations).map_err(write)?;
        writer.set_boot_cpuid_phys(self.boot_cpuid_phys);
        write_node(&mut writer, &self.root).map_err(write)?;
        writer.finish().map_err(write)
    }
}

/// The components of an absolute path; `None` when it does not start with `/`.
fn components(path: &str) -> Option<impl Iterator<Item = &str>> {
    let rest = path.strip_prefix('/')?;
    Some(rest.split('/').filter(|c| !c.is_empty()))
}

fn read_node(node: fdt::node::FdtNode<'_, '_>) -> Node {
    Node {
        name: node.name.to_string(),
        properties: node
            .properties()
            .map(|p| Property {
                name: p.name.to_string(),
                value: p.value.to_vec(),
            })
            .collect(),
        children: node.children().map(read_node).collect(),
    }
}

fn write_node(writer: &mut FdtWriter, node: &Node) -> Result<(), vm_fdt::Error> {
    let handle = writer.begin_node(&node.name)?;
    for property in &node.properties {
        writer.property(&property.name, &property.value)?;
    }
    for child in &node.children {
        write_node(writer, child)?;
    }
    writer.end_node(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::fixture;

    const FIXTURES: [&str; 3] = [
        "qemu-virt-gicv3.dtb",
        "qemu-virt-gicv2.dtb",
        "qemu-raspi4b.dtb",
    ];

    /// The numbers of nodes and properties, counted token by token in the blob: the
    /// reference the reader is checked against.
    fn count_nodes_and_properties(blob: &[u8]) -> (usize, usize) {
        let word = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
        let align4 = |n: usize| (n + 3) & !3;
        let (mut nodes, mut properties, mut at) = (0, 0, word(8));
        loop {
            match word(at) {
                1 => {
                    nodes += 1;
                    let name_len = blob[at + 4..].iter().position(|&b| b == 0).unwrap();
                    at += 4 + align4(name_len + 1);
                }
                3 => {
                    properties += 1;
                    at += 12 + align4(word(at + 4));
                }
                9 => return (nodes, properties),
                _ => at += 4, // FDT_END_NODE, FDT_NOP
            }
        }
    }

    fn property_count(node: &Node) -> usize {
        node.properties.len() + node.children.iter().map(property_count).sum::<usize>()
    }

    fn load(name: &str) -> (Vec<u8>, DtbEditor) {
        let blob = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let editor = DtbEditor::from_bytes(&blob).unwrap();
        (blob, editor)
    }

    #[test]
    fn fixtures_round_trip() {
        for name in FIXTURES {
            let (blob, editor) = load(name);
            let (nodes, properties) = count_nodes_and_properties(&blob);
            assert_eq!(editor.root().count(), nodes, "{name}");
            assert_eq!(property_count(editor.root()), properties, "{name}");
            let written = editor.to_bytes().unwrap();
            let again = DtbEditor::from_bytes(&written).unwrap();
            assert_eq!(again, editor, "{name} changed in the round trip");
        }
    }

    #[test]
    fn reservations_survive() {
        let (_, raspi) = load("qemu-raspi4b.dtb");
        assert!(
            !raspi.reservations().is_empty(),
            "QEMU reserves the spin table"
        );
        let again = DtbEditor::from_bytes(&raspi.to_bytes().unwrap()).unwrap();
        assert_eq!(again.reservations(), raspi.reservations());
    }

    #[test]
    fn paths_with_and_without_unit_addresses() {
        let (_, virt) = load("qemu-virt-gicv3.dtb");
        assert_eq!(virt.node("/").unwrap().name, "");
        assert_eq!(virt.node("/memory").unwrap().name, "memory@40000000");
        assert!(virt.node("/memory@40000000").is_some());
        assert!(virt.node("/memory@0").is_none());
        assert!(virt.node("/cpus/cpu@0").is_some());
        assert!(virt.node("cpus").is_none(), "paths are absolute");
        assert_eq!(
            virt.property("/", "#address-cells"),
            Some(&[0, 0, 0, 2][..])
        );
    }

    #[test]
    fn edits_show_in_the_written_blob() {
        let (_, mut virt) = load("qemu-virt-gicv3.dtb");
        virt.remove_node("/pl011@9000000").unwrap();
        virt.set_property("/chosen", "bootargs", b"aerie.test=1\0".to_vec())
            .unwrap();
        virt.set_property("/", "model", b"edited\0".to_vec())
            .unwrap();
        virt.remove_property("/memory", "device_type").unwrap();
        let removed = virt.remove_nodes_compatible("virtio,mmio");
        assert_eq!(removed, 32);

        let blob = virt.to_bytes().unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert!(fdt.find_node("/pl011@9000000").is_none());
        assert_eq!(fdt.chosen().bootargs(), Some("aerie.test=1"));
        assert_eq!(fdt.root().model(), "edited");
        assert!(
            fdt.find_node("/memory")
                .unwrap()
                .property("device_type")
                .is_none()
        );
        assert!(fdt.find_compatible(&["virtio,mmio"]).is_none());
    }

    #[test]
    fn edit_errors_name_the_path() {
        let (_, mut virt) = load("qemu-virt-gicv2.dtb");
        assert_eq!(
            virt.remove_node("/nope"),
            Err(DtbError::NoSuchNode("/nope".into()))
        );
        assert_eq!(virt.remove_node("/"), Err(DtbError::NoSuchNode("/".into())));
        assert_eq!(
            virt.remove_property("/chosen", "nope"),
            Err(DtbError::NoSuchProperty {
                path: "/chosen".into(),
                name: "nope".into()
            })
        );
        assert!(virt.set_property("/a/b", "x", vec![]).is_err());
        assert_eq!(virt.remove_nodes_compatible("no,such-device"), 0);
        assert!(DtbEditor::from_bytes(b"not a device tree at all, clearly not").is_err());
    }
}
