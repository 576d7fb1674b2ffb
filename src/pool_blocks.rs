//! The blocks of the threads that wait long between bursts of work come
//! from the C library's allocator (`std::alloc::System`), not mimalloc:
//! sled's I/O pool (`sled-io-N`) and the request runtime's workers
//! (`xmeta-requests`, src/shutdown.rs).
//!
//! mimalloc gives each thread pages of its own, one per size of block,
//! and takes a page back only when its thread next allocates, whoever
//! freed the blocks in it. sled starts seven I/O threads (more under
//! load) that never exit: they allocate a little in each write, the
//! main thread frees it, and the pages stay theirs while they wait; the
//! request workers the same between a watch's cycles. In `watch --apply`
//! at 100,000 media, at rest after 40 edits, calling `mi_collect` on
//! those threads (gdb) gave back 3.3 MB (sled's) and 1.35 MB (the
//! workers') of resident memory. The C library takes a block back
//! whichever thread frees it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a block ever came from the C library: until one has, a free
/// need not ask mimalloc whose block it is.
static USED: AtomicBool = AtomicBool::new(false);

const UNKNOWN: u8 = 0;
const MIMALLOC: u8 = 1;
const C_LIBRARY: u8 = 2;

thread_local! {
    /// This thread's allocator, decided at its first block. `const` and
    /// without a destructor: readable at any time, even as the thread
    /// exits, and never itself allocated.
    static ROUTE: Cell<u8> = const { Cell::new(UNKNOWN) };
}

/// Whether this thread's blocks come from the C library, decided at its
/// first block. std (1.95) names a thread before it first allocates in
/// it; a block before that (an older std's) would see the name the
/// thread inherited, and keep the thread on mimalloc: less memory given
/// back, nothing unsound.
pub fn on_this_thread() -> bool {
    ROUTE.with(|route| match route.get() {
        UNKNOWN => {
            let pool = waits_long(&thread_name());
            route.set(if pool { C_LIBRARY } else { MIMALLOC });
            pool
        }
        known => known == C_LIBRARY,
    })
}

fn waits_long(name: &[u8]) -> bool {
    name.starts_with(b"sled-io-") || name.starts_with(b"xmeta-requests\0")
}

/// The kernel's name of this thread (up to 15 bytes), read without
/// allocating: `std::thread::current` may allocate, and this runs inside
/// the allocator.
#[cfg(target_os = "linux")]
fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, its NUL included, to
    // the buffer it is given, which has 16.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}

/// Elsewhere every thread keeps mimalloc.
#[cfg(not(target_os = "linux"))]
fn thread_name() -> [u8; 16] {
    [0; 16]
}

/// One arena for the C library's blocks (glibc would start one per
/// thread, each with pages of its own again): the threads routed here
/// allocate little, and seldom at once. It holds for every call to the C
/// library's `malloc` in the process, of which xmeta makes no others.
/// musl's allocator has one arena anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn one_arena() {
    // SAFETY: sets one malloc parameter; called before any thread starts.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_arena() {}

/// Whether `ptr`, a live block that is not one of our mappings, is the C
/// library's. This trusts mimalloc's page map to know every block of its
/// own, from whichever thread, as `mi_free` itself does (the tests below
/// check each kind of block, should a new mimalloc change that).
pub fn owns(ptr: *mut u8) -> bool {
    // SAFETY: `mi_is_in_heap_region` only looks the address up in
    // mimalloc's page map.
    USED.load(Ordering::Relaxed)
        && !unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast::<c_void>().cast_const()) }
}

/// # Safety
/// As `GlobalAlloc::alloc`.
pub unsafe fn alloc(layout: Layout) -> *mut u8 {
    USED.store(true, Ordering::Relaxed);
    // SAFETY: as the caller's.
    unsafe { System.alloc(layout) }
}

/// # Safety
/// As `GlobalAlloc::alloc_zeroed`.
pub unsafe fn alloc_zeroed(layout: Layout) -> *mut u8 {
    USED.store(true, Ordering::Relaxed);
    // SAFETY: as the caller's.
    unsafe { System.alloc_zeroed(layout) }
}

/// # Safety
/// `ptr` is a block of the C library's (`owns`), of `layout`.
pub unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
    // SAFETY: as the caller's.
    unsafe { System.dealloc(ptr, layout) }
}

/// Grows or shrinks a block of the C library's, which stays its.
///
/// # Safety
/// As `GlobalAlloc::realloc`, for a block of the C library's (`owns`).
pub unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: as the caller's.
    unsafe { System.realloc(ptr, layout, new_size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sleds_io_threads_and_the_request_workers_are_routed() {
        assert!(waits_long(b"sled-io-0\0\0\0\0\0\0\0"));
        assert!(waits_long(b"sled-io-21\0\0\0\0\0\0"));
        assert!(waits_long(b"xmeta-requests\0\0"));
        assert!(!waits_long(b"xmeta-requestsX\0"));
        assert!(!waits_long(b"tokio-rt-worker\0"));
        assert!(!waits_long(b"xmeta-postgres\0\0"));
        assert!(!waits_long(b"sled\0\0\0\0\0\0\0\0\0\0\0\0"));
    }

    /// mimalloc's blocks of every kind (small, large, huge, over-aligned),
    /// made on another thread, are never taken for the C library's; the C
    /// library's, small and mapped, always are.
    #[test]
    fn mimalloc_knows_its_blocks_and_not_the_c_librarys() {
        use mimalloc::MiMalloc;
        let layouts = [
            Layout::from_size_align(16, 8).unwrap(),
            Layout::from_size_align(1 << 20, 8).unwrap(),
            Layout::from_size_align(64 << 20, 8).unwrap(),
            Layout::from_size_align(1 << 20, 1 << 20).unwrap(),
        ];
        // SAFETY: non-zero sizes, each block freed once with its layout.
        unsafe {
            let c: Vec<(usize, Layout)> = [64, 1 << 20]
                .into_iter()
                .map(|size| {
                    let layout = Layout::from_size_align(size, 8).unwrap();
                    (alloc(layout) as usize, layout)
                })
                .collect();
            let theirs = std::thread::spawn(move || {
                layouts.map(|layout| (MiMalloc.alloc(layout) as usize, layout))
            })
            .join()
            .unwrap();
            for (p, layout) in theirs {
                assert!(!owns(p as *mut u8), "{layout:?}");
                MiMalloc.dealloc(p as *mut u8, layout);
            }
            for (p, layout) in c {
                assert!(owns(p as *mut u8), "{layout:?}");
                dealloc(p as *mut u8, layout);
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_threads_name_is_read_as_the_kernel_holds_it() {
        let name = std::thread::Builder::new()
            .name("sled-io-7".into())
            .spawn(|| (thread_name(), on_this_thread()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(&name.0[..10], b"sled-io-7\0");
        assert!(name.1);
        let other = std::thread::Builder::new()
            .name("xmeta-postgres".into())
            .spawn(on_this_thread)
            .unwrap()
            .join()
            .unwrap();
        assert!(!other);
    }
}
