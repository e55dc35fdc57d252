//! Huge-page advice for fresh large buffers: here because [`GetResult::bytes`] uses it; the
//! other crates reach it, with its rationale, as `dj_rt::pages`.
//!
//! [`GetResult::bytes`]: crate::store::GetResult::bytes

/// Buffers below this size are left alone: their faults are cheap, and small allocations come
/// from the heap, where advice would reach neighbouring memory.
pub const HUGE_MIN: usize = 8 << 20;

/// Ask the kernel to back the 2 MiB-aligned interior of `[ptr, ptr + len)` with huge pages, if
/// `len` is at least [`HUGE_MIN`]. Purely advisory: contents and validity never change, and an
/// error (e.g. a kernel without THP) is ignored.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn advise_huge(ptr: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    if len < HUGE_MIN {
        return;
    }
    let addr = ptr as usize;
    let Some(start) = addr.checked_next_multiple_of(HUGE) else {
        return;
    };
    let end = addr.saturating_add(len) & !(HUGE - 1);
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` lies inside one live allocation of `len` bytes at `ptr` that the
    // caller owns. MADV_HUGEPAGE only marks the range as eligible for transparent huge pages; it
    // does not read, write, free or remap memory, so no Rust reference or invariant is affected.
    // The return value is ignored on purpose: the advice is an optimisation.
    let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
}

/// Elsewhere the advice is a no-op.
#[cfg(not(target_os = "linux"))]
pub fn advise_huge(_ptr: *const u8, _len: usize) {}
