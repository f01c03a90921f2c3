//! Where the model runs: `--device auto|cpu|metal|cuda`.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{LlmError, Result};

/// The device the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// Metal or CUDA when this build has them and the machine answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    Metal,
    Cuda,
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "metal" => DeviceChoice::Metal,
            "cuda" => DeviceChoice::Cuda,
            other => {
                return Err(format!(
                    "unknown device `{other}` (expected auto, cpu, metal or cuda)"
                ));
            }
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Metal => "metal",
            DeviceChoice::Cuda => "cuda",
        })
    }
}

impl DeviceChoice {
    /// The candle device, or a typed error when the build lacks it.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Metal => {
                if candle_core::utils::metal_is_available() {
                    Device::new_metal(0).map_err(LlmError::from)
                } else {
                    Err(LlmError::Device(
                        "metal".into(),
                        "build docent with `--features metal` on a Mac with Apple silicon, or use --device cpu".into(),
                    ))
                }
            }
            DeviceChoice::Cuda => {
                if candle_core::utils::cuda_is_available() {
                    Device::new_cuda(0).map_err(LlmError::from)
                } else {
                    Err(LlmError::Device(
                        "cuda".into(),
                        "build docent with `--features cuda` on a machine with an NVIDIA GPU, or use --device cpu".into(),
                    ))
                }
            }
            DeviceChoice::Auto => {
                if candle_core::utils::metal_is_available()
                    && let Ok(d) = Device::new_metal(0)
                {
                    return Ok(d);
                }
                if candle_core::utils::cuda_is_available()
                    && let Ok(d) = Device::new_cuda(0)
                {
                    return Ok(d);
                }
                Ok(Device::Cpu)
            }
        }
    }
}

/// A short name of a device for status lines.
pub fn describe(d: &Device) -> &'static str {
    match d {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_without_gpu_features() {
        assert_eq!("AUTO".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert!("tpu".parse::<DeviceChoice>().unwrap_err().contains("tpu"));
        assert!(matches!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu));
        if !candle_core::utils::metal_is_available() {
            let e = DeviceChoice::Metal.resolve().unwrap_err().to_string();
            assert!(e.contains("--features metal"), "{e}");
        }
    }
}
