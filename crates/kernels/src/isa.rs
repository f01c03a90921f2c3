//! Run-time choice of instruction set.
//!
//! The CPU is probed once ([`Features::get`]); [`Isa::active`] is the best path it supports,
//! lowered by the `DOCENT_KERNELS` environment variable (`scalar`, `avx2`, `avx512`, `neon`)
//! when that names a path this machine has. Every kernel takes an [`Isa`] argument, so tests can
//! run each path the machine has side by side; an `Isa` the CPU lacks is lowered to the best one
//! it has below it ([`Isa::effective`]), never executed.

use std::fmt;
use std::sync::OnceLock;

/// Environment variable that lowers the dispatched instruction set (e.g. `DOCENT_KERNELS=scalar`).
pub const ISA_ENV: &str = "DOCENT_KERNELS";

/// A family of kernels. Ordered from the most portable to the widest on each architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, on every machine: the reference every other path is tested against.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C (Haswell, Zen 1 and later).
    Avx2,
    /// x86-64 with AVX2's set plus AVX-512 F/BW/VL and VNNI (Ice Lake, Zen 4 and later).
    Avx512,
    /// aarch64 with NEON and the dot-product extension (Apple silicon, Graviton 2+, Cortex-A76+).
    Neon,
}

impl Isa {
    /// Every path, in order.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    /// The lower-case name used by `DOCENT_KERNELS` and in [`cpu_features`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as [`Isa::name`] writes it (case-insensitive).
    pub fn parse(name: &str) -> Option<Isa> {
        let name = name.trim().to_ascii_lowercase();
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        let f = Features::get();
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => f.avx2 && f.fma && f.f16c,
            Isa::Avx512 => {
                Isa::Avx2.is_supported() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni
            }
            Isa::Neon => f.neon && f.dotprod,
        }
    }

    /// The widest path this CPU supports.
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2, Isa::Neon]
                .into_iter()
                .find(|isa| isa.is_supported())
                .unwrap_or(Isa::Scalar)
        })
    }

    /// The path kernels use by default: [`Isa::detected`], lowered by `DOCENT_KERNELS` when it
    /// names a supported path. Read once per process.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| match env_request() {
            Some(requested) if requested.is_supported() => requested,
            // A wider path than the CPU has: the best one below it (AVX-512 → AVX2). A path of
            // another architecture is a mistake in the variable: ignore it.
            Some(requested) => match requested.effective() {
                Isa::Scalar => Isa::detected(),
                lower => lower,
            },
            None => Isa::detected(),
        })
    }

    /// Every path this CPU supports, scalar first: what tests iterate over.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }

    /// The path that actually runs when `self` is asked for: `self` if supported, else the best
    /// supported path below it (AVX-512 falls back to AVX2), else scalar.
    pub fn effective(self) -> Isa {
        if self.is_supported() {
            self
        } else if self == Isa::Avx512 && Isa::Avx2.is_supported() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn env_request() -> Option<Isa> {
    std::env::var(ISA_ENV).ok().and_then(|v| Isa::parse(&v))
}

/// The CPU features the kernels care about, probed once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512vnni: bool,
    pub neon: bool,
    pub dotprod: bool,
}

impl Features {
    /// This CPU's features (probed on first use).
    pub fn get() -> Features {
        static FEATURES: OnceLock<Features> = OnceLock::new();
        *FEATURES.get_or_init(Features::probe)
    }

    #[cfg(target_arch = "x86_64")]
    fn probe() -> Features {
        Features {
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            fma: std::arch::is_x86_feature_detected!("fma"),
            f16c: std::arch::is_x86_feature_detected!("f16c"),
            avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            avx512bw: std::arch::is_x86_feature_detected!("avx512bw"),
            avx512vl: std::arch::is_x86_feature_detected!("avx512vl"),
            avx512vnni: std::arch::is_x86_feature_detected!("avx512vnni"),
            ..Features::default()
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn probe() -> Features {
        Features {
            neon: std::arch::is_aarch64_feature_detected!("neon"),
            dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
            ..Features::default()
        }
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn probe() -> Features {
        Features::default()
    }

    fn names(self) -> Vec<&'static str> {
        let all = [
            (self.avx2, "avx2"),
            (self.fma, "fma"),
            (self.f16c, "f16c"),
            (self.avx512f, "avx512f"),
            (self.avx512bw, "avx512bw"),
            (self.avx512vl, "avx512vl"),
            (self.avx512vnni, "avx512vnni"),
            (self.neon, "neon"),
            (self.dotprod, "dotprod"),
        ];
        all.into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| n)
            .collect()
    }
}

/// One line for benchmarks and `docent status`: the architecture, the features found and the
/// path dispatched to, e.g. `x86_64 [avx2 fma f16c avx512f avx512bw avx512vl avx512vnni] -> avx512`.
pub fn cpu_features() -> String {
    let names = Features::get().names();
    let mut line = format!(
        "{} [{}] -> {}",
        std::env::consts::ARCH,
        names.join(" "),
        Isa::active()
    );
    if let Ok(v) = std::env::var(ISA_ENV) {
        match Isa::parse(&v) {
            Some(isa) if isa.is_supported() => line.push_str(&format!(" ({ISA_ENV}={v})")),
            _ => line.push_str(&format!(
                " ({ISA_ENV}={v} not available here; expected one of {})",
                Isa::available()
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
            assert_eq!(Isa::parse(&isa.name().to_uppercase()), Some(isa));
        }
        assert_eq!(Isa::parse("sse9"), None);
    }

    #[test]
    fn scalar_is_always_available_and_detected_is_supported() {
        assert!(Isa::available().contains(&Isa::Scalar));
        assert!(Isa::detected().is_supported());
        assert!(Isa::active().is_supported());
        for isa in Isa::ALL {
            assert!(isa.effective().is_supported());
        }
    }

    #[test]
    fn cpu_features_names_the_dispatched_path() {
        let line = cpu_features();
        assert!(line.contains(Isa::active().name()), "{line}");
        assert!(line.starts_with(std::env::consts::ARCH), "{line}");
    }
}
