//! The process heap, as the kernel sees it.

/// Hands the heap's free pages back to the kernel (glibc's `malloc_trim(0)`: the free top of
/// every arena, and whole free pages inside them). Loading a large configuration builds a
/// syntax tree several times the size of the model it leaves behind; without this the pages
/// of that tree stay counted in the process's RSS for as long as it runs, because the
/// allocator keeps freed memory for reuse. Costs a walk of the free lists: call it after a
/// load, not on a hot path. A no-op on other C libraries.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    trim();
}

#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes no pointer and only rearranges the allocator's own free
    // lists, under the allocator's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
