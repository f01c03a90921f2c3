//! Records the build profile so benchmarks can print what they measured.

fn main() {
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    let debug = std::env::var("DEBUG").unwrap_or_default();
    println!("cargo:rustc-env=DOCENT_KERNELS_PROFILE={profile}");
    println!("cargo:rustc-env=DOCENT_KERNELS_OPT_LEVEL={opt}");
    println!("cargo:rustc-env=DOCENT_KERNELS_DEBUG={debug}");
    println!("cargo:rerun-if-changed=build.rs");
}
