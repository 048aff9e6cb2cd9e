//! The global allocator: jemalloc, on every build but MSVC, so that freed memory goes back to the
//! operating system.
//!
//! A burst of MCP sessions or a large result allocates tens of megabytes that are freed when
//! they end; a C allocator keeps such memory, so RSS stayed at the peak (1,000 idle MCP
//! sessions: 14 MB → 144 MB, still 144 MB after they closed). jemalloc runs with its background
//! purging thread and short decay times, so dirty pages go back to the kernel within about a
//! second of being freed.
//!
//! - **glibc** (`cargo build`, a laptop): glibc malloc with a `malloc_trim` task gave memory
//!   back as well, but jemalloc served 11–18 % more point reads per second at 8 clients
//!   (0.35 against 0.41 ms of server CPU per call; malloc/free were 16 % of the profile).
//! - **static musl** (the container image, the Pi): musl has no `malloc_trim`, and mimalloc,
//!   tried first, kept as much as musl did. The arm64 build is configured for pages up to 64 KiB
//!   (`JEMALLOC_SYS_WITH_LG_PAGE=16`, in the Dockerfile and scripts/cross): the Raspberry Pi 5
//!   kernel uses 16 KiB pages, and jemalloc built for 4 KiB pages refuses to start there.
//!
//! Figures for both: docs/benchmarks.md.

/// jemalloc (see the module header).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (it reads this symbol before the first allocation): purge
/// freed pages from a background thread, dirty pages after 1 s, lazily-freed ones at once.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A `const char *` jemalloc reads once at start-up.
#[cfg(not(target_env = "msvc"))]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string; nothing ever writes through it.
#[cfg(not(target_env = "msvc"))]
unsafe impl Sync for MallocConf {}
