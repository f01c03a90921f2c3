//! The one error type: arguments whose sizes do not fit together.

use std::fmt;

/// A kernel was called with buffers whose lengths do not match the shape it was given. Always
/// a bug in the caller (the model code), never the user's input: the message says which argument
/// and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// The kernel that refused, e.g. `gemm_f32`.
    pub kernel: &'static str,
    /// What did not fit, e.g. `a has 10 values, expected m*k = 12`.
    pub detail: String,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (a bug in the caller; hint: report it with the model that triggered it)",
            self.kernel, self.detail
        )
    }
}

impl std::error::Error for ShapeError {}

/// Result alias of this crate.
pub type Result<T, E = ShapeError> = std::result::Result<T, E>;

/// Returns a [`ShapeError`] unless `len == expected`.
pub(crate) fn check_len(
    kernel: &'static str,
    what: &str,
    len: usize,
    expected: usize,
) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(ShapeError {
            kernel,
            detail: format!("{what} has {len} values, expected {expected}"),
        })
    }
}

/// `a · b`, or a [`ShapeError`] if it overflows (shapes that large cannot be real buffers).
pub(crate) fn product(kernel: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| shape_error(kernel, format!("{a} × {b} overflows")))
}

/// The values spanned by `rows` rows of `width` at `stride` (`(rows - 1) · stride + width`),
/// `None` on overflow.
pub(crate) fn rows_span(rows: usize, stride: usize, width: usize) -> Option<usize> {
    if rows == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(stride)?.checked_add(width)
}

pub(crate) fn shape_error(kernel: &'static str, detail: String) -> ShapeError {
    ShapeError { kernel, detail }
}
