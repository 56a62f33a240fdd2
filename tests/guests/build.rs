//! Links the test guests with their own linker script, with the dynamic relocations
//! already applied in the file.
//!
//! Like every aarch64 crate of the workspace the guests are position-independent
//! executables (see `.cargo/config.toml`), but they always run at their link address
//! (the start of guest RAM), so `--apply-dynamic-relocs` makes the linker write the
//! final values of the `R_AARCH64_RELATIVE` relocations into the image itself and
//! the guests need no self-relocation code.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&manifest).join("../../linker/test-guest.ld");
    let script = script.canonicalize().unwrap_or(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    if target_os == "none" {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--apply-dynamic-relocs");
    }
}
