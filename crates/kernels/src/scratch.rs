//! Scratch buffers that grow to the largest shape seen and are then reused.
//!
//! A model keeps one [`Scratch`] per worker loop (or per batch shape) and asks it for the
//! buffers of each step: `let [h, tmp] = scratch.f32s([m * n, m * k]);`. The first call at a
//! shape allocates; later calls at that shape or smaller allocate nothing
//! ([`Scratch::growths`] counts allocations, so tests can prove the steady state is free).
//! Contents are not cleared between calls: every kernel here writes all of its output.

/// Indexed buffers of `f32`, `i8` and `i32`, each growing but never shrinking.
#[derive(Default)]
pub struct Scratch {
    f32s: Vec<Vec<f32>>,
    i8s: Vec<Vec<i8>>,
    i32s: Vec<Vec<i32>>,
    growths: u64,
}

fn take<'a, T: Copy + Default, const N: usize>(
    slots: &'a mut Vec<Vec<T>>,
    lens: [usize; N],
    growths: &mut u64,
) -> [&'a mut [T]; N] {
    if slots.len() < N {
        slots.resize_with(N, Vec::new);
    }
    for (slot, &len) in slots.iter_mut().zip(&lens) {
        if slot.len() < len {
            *growths += 1;
            slot.resize(len, T::default());
        }
    }
    let mut iter = slots.iter_mut();
    lens.map(|len| match iter.next() {
        Some(slot) => &mut slot[..len],
        // Unreachable: `slots` has at least N entries.
        None => &mut [],
    })
}

impl Scratch {
    /// An empty scratch (allocates on first use).
    pub fn new() -> Scratch {
        Scratch::default()
    }

    /// `N` distinct `f32` buffers (slots `0..N`) of the given lengths.
    pub fn f32s<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [f32]; N] {
        take(&mut self.f32s, lens, &mut self.growths)
    }

    /// `N` distinct `i8` buffers (slots `0..N`, separate from the `f32` slots).
    pub fn i8s<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [i8]; N] {
        take(&mut self.i8s, lens, &mut self.growths)
    }

    /// `N` distinct `i32` buffers (slots `0..N`).
    pub fn i32s<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [i32]; N] {
        take(&mut self.i32s, lens, &mut self.growths)
    }

    /// How many times a buffer had to grow (allocate) so far.
    pub fn growths(&self) -> u64 {
        self.growths
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.f32s.iter().map(|v| v.capacity() * 4).sum::<usize>()
            + self.i8s.iter().map(Vec::capacity).sum::<usize>()
            + self.i32s.iter().map(|v| v.capacity() * 4).sum::<usize>()
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the contents: they are activations of the user's documents.
        f.debug_struct("Scratch")
            .field("bytes", &self.bytes())
            .field("growths", &self.growths)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_once_then_reuses() {
        let mut s = Scratch::new();
        {
            let [a, b] = s.f32s([10, 20]);
            assert_eq!((a.len(), b.len()), (10, 20));
            a[0] = 1.0;
            b[0] = 2.0;
        }
        assert_eq!(s.growths(), 2);
        for _ in 0..5 {
            let [a, b] = s.f32s([10, 5]);
            assert_eq!((a.len(), b.len(), a[0], b[0]), (10, 5, 1.0, 2.0));
        }
        assert_eq!(s.growths(), 2);
        let [_, _, c] = s.f32s([1, 1, 3]);
        assert_eq!(c.len(), 3);
        assert_eq!(s.growths(), 3);
        let [q] = s.i8s([7]);
        assert_eq!(q.len(), 7);
        assert_eq!(s.growths(), 4);
        assert!(!format!("{s:?}").contains("1.0"));
    }
}
