//! Links the edgeload binary as a position-dependent executable (`-no-pie`). A PIE of this size
//! carries 1.4 MB of relative relocations that the loader reads and applies at every start:
//! ~1.4 MB of file pages and ~1 MB of written pages in every run's RSS, for address
//! randomisation of the binary image (libraries, heap and stacks stay randomised). The code is
//! compiled as PIC either way; only the final link changes. Tests and benches link as usual.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
