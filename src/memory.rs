//! Giving freed memory back to the operating system.
//!
//! A burst of MCP sessions or a large result allocates tens of megabytes that are freed when
//! they end; glibc's allocator keeps such memory in its heaps, so RSS stayed at the peak
//! (1,000 idle MCP sessions: 14 MB → 144 MB, still 144 MB after they closed; `malloc_trim(0)`
//! then brought it to 25 MB, measured with gdb on the release binary). On glibc a background
//! task asks `mallinfo2` every 10 s how much free memory the heaps hold and calls
//! `malloc_trim(0)` when it is over 16 MiB: RSS is back at 19 MB 12 s after each burst.
//!
//! Not solved for the static musl build (the container image, the Pi): musl has no
//! `malloc_trim`, and mimalloc, tried as its allocator, kept as much (1,000 idle sessions:
//! 21 → 210 MB, 170–190 MB after they closed, with or without `MIMALLOC_PURGE_DELAY=0`), so it
//! was dropped again. See docs/benchmarks.md.

/// Free heap memory above which the heaps are trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_ABOVE: usize = 16 * 1024 * 1024;

/// Start the trimming task (glibc only; elsewhere nothing to do). Stops with `stop`.
pub fn spawn_trimmer(stop: tokio_util::sync::CancellationToken) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let free = free_heap_bytes();
            if free > TRIM_ABOVE {
                // SAFETY: malloc_trim only releases free memory back to the kernel; it has no
                // preconditions and is thread-safe.
                let released = unsafe { libc::malloc_trim(0) };
                tracing::debug!(free, released, "returned free heap memory to the OS");
            }
        }
    });
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    drop(stop);
}

/// Bytes the glibc heaps hold free (`mallinfo2().fordblks`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_heap_bytes() -> usize {
    // SAFETY: mallinfo2 reads the allocator's statistics; no preconditions.
    unsafe { libc::mallinfo2() }.fordblks
}
