//! Giving freed memory back to the operating system.
//!
//! A burst of MCP sessions or a large result allocates tens of megabytes that are freed when
//! they end; a C allocator keeps such memory, so RSS stayed at the peak (1,000 idle MCP
//! sessions: 14 MB → 144 MB, still 144 MB after they closed). Two builds, two answers:
//!
//! - **glibc** (`cargo build`, a laptop): a background task asks `mallinfo2` every second how
//!   much free memory the heaps hold and calls `malloc_trim(0)` when it is over 4 MiB: RSS is
//!   back near its idle figure within a second or two of a burst or a large result (a look
//!   costs microseconds; a trim happens only after memory was freed).
//! - **static musl** (the container image, the Pi): musl has no `malloc_trim`, and mimalloc,
//!   tried first, kept as much as musl did. The musl build uses jemalloc with its background
//!   purging thread and short decay times, so dirty pages go back to the kernel within about a
//!   second of being freed. The arm64 build is configured for pages up to 64 KiB
//!   (`JEMALLOC_SYS_WITH_LG_PAGE=16`, in the Dockerfile and scripts/cross): the Raspberry Pi 5
//!   kernel uses 16 KiB pages, and jemalloc built for 4 KiB pages refuses to start there.
//!
//! Figures for both: docs/benchmarks.md.

/// jemalloc, for the static musl build only (see the module header).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (it reads this symbol before the first allocation): purge
/// freed pages from a background thread, dirty pages after 1 s, lazily-freed ones at once.
#[cfg(target_env = "musl")]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A `const char *` jemalloc reads once at start-up.
#[cfg(target_env = "musl")]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string; nothing ever writes through it.
#[cfg(target_env = "musl")]
unsafe impl Sync for MallocConf {}

/// Free heap memory above which the heaps are trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_ABOVE: usize = 4 * 1024 * 1024;

/// Start the trimming task (glibc only; elsewhere nothing to do). Stops with `stop`.
pub fn spawn_trimmer(stop: tokio_util::sync::CancellationToken) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
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
