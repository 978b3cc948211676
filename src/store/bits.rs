//! Little-endian words and bit masks, shared by the packed key runs
//! (`packed`) and the packed id runs (`ids`).

/// The little-endian u64 at byte `i` of `b` (which the caller has checked
/// holds it).
#[inline]
pub(super) fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// The `N` bytes of `b` from byte `at`, zeros past its end: a packed
/// value near the end of a file is read whole without a bounds case.
#[inline]
pub(super) fn window<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let rest = b.get(at..).unwrap_or(&[]);
    match rest.get(..N) {
        Some(w) => w.try_into().unwrap_or([0; N]),
        None => {
            let mut w = [0u8; N];
            w[..rest.len()].copy_from_slice(rest);
            w
        }
    }
}

/// The low `width` bits set (all 64 for a width of 64 or more).
#[inline]
pub(super) fn mask(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_zeros_past_the_end() {
        let b = [1u8, 2, 3];
        assert_eq!(window::<4>(&b, 0), [1, 2, 3, 0]);
        assert_eq!(window::<2>(&b, 1), [2, 3]);
        assert_eq!(window::<2>(&b, 3), [0, 0]);
        assert_eq!(window::<2>(&b, 9), [0, 0]);
        assert_eq!(mask(0), 0);
        assert_eq!(mask(3), 7);
        assert_eq!(mask(64), u64::MAX);
        assert_eq!(u64_at(&[0, 1, 0, 0, 0, 0, 0, 0, 0], 1), 1);
    }
}
