//! The process's allocator, kept close to what is in use. A bot that mostly waits would otherwise
//! hold on to what its busiest moment allocated: glibc keeps freed memory in the arena that
//! freed it, and a poll of a large plugin builds and drops several MiB of listing at a time.

/// glibc gives threads that allocate at once arenas of their own (up to eight per core), and
/// memory freed in one stays resident for it: tokio's workers, SQLite's connection threads and
/// blocking tasks each kept a few MiB that nothing used. Two arenas are plenty for a bot that
/// mostly waits. Call before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    // SAFETY: `mallopt` only sets an allocator parameter; a refused value leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands free memory back to the system after a burst of allocation (a poll): without it, what
/// a listing of 10,000 applicants took stays resident until the next one reuses it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: `malloc_trim` only releases free pages; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere the system allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Elsewhere the system allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}
