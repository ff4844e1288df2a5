//! Handing memory the process no longer uses back to the operating system.
//!
//! The server allocates with mimalloc, which keeps freed pages for reuse and
//! returns them lazily, as the thread that owns them goes on allocating. A
//! policy load frees a great deal at once (the data file's text, the parse's
//! scratch, the replaced revision's data) and then its thread goes idle, so
//! without a nudge the process would keep its high-water mark as resident
//! memory until the next load, and each load would start from there.

/// Ask the allocator to return the free memory it holds to the operating
/// system now. Takes a few milliseconds after a large load; called once per
/// activation, never on the request path. Harmless when mimalloc is not the
/// process's allocator (a program embedding the library): it then has
/// nothing to return.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` has no preconditions: it only walks mimalloc's
    // own free lists and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
