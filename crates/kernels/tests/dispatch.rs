//! `DOCENT_KERNELS` lowers the dispatched path. The variable is read once per process, so each
//! case runs this test binary again as a child with the variable set.

use std::process::Command;

use docent_kernels::{Isa, cpu_features};

const CHILD: &str = "DOCENT_KERNELS_TEST_EXPECT";

#[test]
fn the_environment_variable_chooses_the_path() {
    if let Ok(expected) = std::env::var(CHILD) {
        assert_eq!(Isa::active().name(), expected, "{}", cpu_features());
        return;
    }
    let exe = std::env::current_exe().expect("test executable");
    let mut cases: Vec<(String, Isa)> = Isa::available()
        .into_iter()
        .map(|isa| (isa.name().to_uppercase(), isa))
        .collect();
    // A path of another architecture, or nonsense, leaves the detected path.
    let foreign = if cfg!(target_arch = "aarch64") {
        "avx2"
    } else {
        "neon"
    };
    cases.push((foreign.to_owned(), Isa::detected()));
    cases.push(("sse9".to_owned(), Isa::detected()));
    for (value, expected) in cases {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "the_environment_variable_chooses_the_path",
                "--nocapture",
            ])
            .env("DOCENT_KERNELS", &value)
            .env(CHILD, expected.name())
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "DOCENT_KERNELS={value}: {stdout}");
        // The child really ran the check (a filter matching nothing would also succeed).
        assert!(
            stdout.contains("1 passed"),
            "DOCENT_KERNELS={value}: {stdout}"
        );
    }
}
