//! How the allocator treats memory freed during a long offline read.
//!
//! Reading a journal of millions of records through sled allocates and frees gigabytes
//! of buffers (sled reads each ~520 KB chunk of records into a growing buffer, copies it
//! into its node and frees the buffer). mimalloc gives freed memory back to the OS after
//! a delay (v3: 1 s), so later buffers land on fresh pages that the kernel must zero: on
//! the 10M-event audit, 6,000-8,300 page faults and about a fifth of all CPU time in the
//! kernel's `clear_page`. A report command ends soon anyway, so it asks mimalloc to keep
//! freed memory for reuse (page faults then ~1,840: what remains is sled's own memory
//! growing to ~1.9 GB while it reads).

/// The index of `purge_delay` in mimalloc's `mi_option_e` (v3, which libmimalloc-sys 0.1
/// builds by default; its `extended` bindings name no constant for this option). The test
/// below checks the index by the option's documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory this process frees for reuse instead of returning it to the OS (mimalloc's
/// `purge_delay = -1`). For the offline report commands only: a long-running server
/// should give memory back.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an option value (mimalloc reads options
    // atomically on every use); any thread may call it at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_mimallocs_purge_delay_and_is_turned_off() {
        // SAFETY: reading an option has no preconditions.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc v3's default purge delay (options.c): 1000 ms. Another index
            // would read another option's default.
            assert_eq!(before, 1000);
        }
        keep_freed_memory();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            -1
        );
    }
}
