//! Passes the linker script to the linker when building the aarch64 binary.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = std::path::Path::new(&manifest).join("../linker/aerie.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if target_os == "none" {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
