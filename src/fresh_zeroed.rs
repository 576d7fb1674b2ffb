//! The binary's allocator: mimalloc, except that a large zeroed
//! allocation is a fresh mapping of the OS's, whose pages stay unbacked
//! until written, and that the threads which wait long between bursts
//! (sled's I/O pool, the request runtime's workers) allocate from the C
//! library (`pool_blocks.rs`).
//!
//! mimalloc zeroes a block itself unless it knows the memory was never
//! used, and after a parse almost none is. sled zeroes 21 MB of
//! histograms as it first opens a database (its metrics, `Lazy` and
//! mostly never written), and 6 MB for its page table's first nodes, of
//! which a state touches a few KB: written by mimalloc's `memset`, all of
//! it was resident in every command that opens sled after planning
//! (adopt, apply, watch).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use mimalloc::MiMalloc;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use crate::pool_blocks;

/// Zeroed allocations from this size on are mapped; below it, one page
/// of mimalloc's is cheaper than a system call and a fault per page.
const MAPPED_FROM: usize = 256 << 10;
/// What a mapping's start is aligned to.
const PAGE: usize = 4096;

/// The addresses of the live mappings (0: a free slot). Kept here rather
/// than asked of mimalloc, whose idea of its own memory is an internal
/// detail that changed between its versions. sled keeps about 50; when
/// all are taken, a zeroed block is mimalloc's, as before.
static MAPPED: [AtomicUsize; 1024] = [const { AtomicUsize::new(0) }; 1024];

/// Notes `ptr` as a mapping of ours; false if there is no room.
fn remember(ptr: *mut u8) -> bool {
    let address = ptr as usize;
    MAPPED.iter().any(|slot| {
        slot.compare_exchange(0, address, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// The slot of `ptr`, of `layout`, if it is a mapping of ours. A slot
/// names only a live mapping (`unmap` frees the slot before the address),
/// so no two name the same address, and only the block's owner, who
/// frees or resizes it, clears that slot.
fn slot_of(ptr: *mut u8, layout: Layout) -> Option<&'static AtomicUsize> {
    if layout.size() < MAPPED_FROM {
        return None;
    }
    let address = ptr as usize;
    MAPPED
        .iter()
        .find(|slot| slot.load(Ordering::Acquire) == address)
}

/// Frees the slot of a mapping of ours of `size` bytes, then unmaps it.
/// In that order: once unmapped, the OS may hand the address out again,
/// to another thread's mapping or to mimalloc, while a slot still named
/// it. A failure to unmap leaves it mapped: a leak, never a fault.
///
/// # Safety
/// `ptr` is the start of that mapping, no longer used.
unsafe fn unmap(ptr: *mut u8, size: usize, slot: &AtomicUsize) {
    slot.store(0, Ordering::Release);
    // SAFETY: as the caller's.
    let _ = unsafe { rustix::mm::munmap(ptr.cast::<c_void>(), size) };
}

pub struct FreshZeroed;

impl FreshZeroed {
    /// A new anonymous mapping of `size` bytes, zero and unbacked, noted
    /// as ours; `None` if the OS or `MAPPED` has no room.
    fn map(size: usize) -> Option<*mut u8> {
        // SAFETY: a new mapping, at an address the OS picks.
        let mapped = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()?;
        // With transparent huge pages on `always`, one write would back
        // 2 MB. Advice only: a refusal leaves the mapping as it is.
        // SAFETY: the whole of the mapping just made.
        let _ = unsafe { rustix::mm::madvise(mapped, size, Advice::LinuxNoHugepage) };
        if remember(mapped.cast()) {
            Some(mapped.cast())
        } else {
            // SAFETY: the mapping just made, never handed out.
            let _ = unsafe { rustix::mm::munmap(mapped, size) };
            None
        }
    }

    /// A new block from this thread's allocator: the C library's on the
    /// threads `pool_blocks` names, mimalloc's on the others.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`.
    unsafe fn fresh(layout: Layout) -> *mut u8 {
        if pool_blocks::on_this_thread() {
            // SAFETY: as the caller's.
            unsafe { pool_blocks::alloc(layout) }
        } else {
            // SAFETY: as the caller's.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    /// `fresh`, zeroed.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc_zeroed`.
    unsafe fn fresh_zeroed(layout: Layout) -> *mut u8 {
        if pool_blocks::on_this_thread() {
            // SAFETY: as the caller's.
            unsafe { pool_blocks::alloc_zeroed(layout) }
        } else {
            // SAFETY: as the caller's.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    /// Moves a block into a `fresh` one of `new_size` bytes and frees it
    /// with `free`; null, the block untouched, if there is no room.
    ///
    /// # Safety
    /// As `GlobalAlloc::realloc`; `free` frees `ptr`, of `layout`.
    unsafe fn moved(
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        free: impl FnOnce(*mut u8),
    ) -> *mut u8 {
        // SAFETY: `new_size` with the old alignment is a valid layout, as
        // the caller guarantees.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a new block; both are valid for the bytes copied, and
        // distinct; the old one is not used after.
        unsafe {
            let new = Self::fresh(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                free(ptr);
            }
            new
        }
    }
}

// SAFETY: every block comes from mimalloc, from the C library (the
// threads `pool_blocks` names allocate there, and only there) or from an
// anonymous private mapping of exactly its size, page-aligned (so
// aligned to `align` up to a page), and goes back to where it came from:
// `MAPPED` holds the address of every mapping handed out and not yet
// freed, and of nothing else (`unmap`); of the rest, mimalloc knows its
// own blocks by address (`pool_blocks::owns`).
unsafe impl GlobalAlloc for FreshZeroed {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller's.
        unsafe { Self::fresh(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < MAPPED_FROM || layout.align() > PAGE {
            // SAFETY: as the caller's.
            return unsafe { Self::fresh_zeroed(layout) };
        }
        // SAFETY: as the caller's, for a fresh block if no mapping.
        Self::map(layout.size()).unwrap_or_else(|| unsafe { Self::fresh_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match slot_of(ptr, layout) {
            // SAFETY: the mapping `alloc_zeroed` made for this layout.
            Some(slot) => unsafe { unmap(ptr, layout.size(), slot) },
            // SAFETY: the C library's block, as the caller's.
            None if pool_blocks::owns(ptr) => unsafe { pool_blocks::dealloc(ptr, layout) },
            // SAFETY: mimalloc's block, as the caller's.
            None => unsafe { MiMalloc.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match slot_of(ptr, layout) {
            // SAFETY: the mapping `alloc_zeroed` made for this layout,
            // unmapped once moved.
            Some(slot) => unsafe {
                Self::moved(ptr, layout, new_size, |p| unmap(p, layout.size(), slot))
            },
            // SAFETY: the C library's block, as the caller's: it stays
            // the C library's, on whichever thread.
            None if pool_blocks::owns(ptr) => unsafe {
                pool_blocks::realloc(ptr, layout, new_size)
            },
            // SAFETY: mimalloc's block, as the caller's, moved to the C
            // library: a pool thread takes no page of mimalloc's.
            None if pool_blocks::on_this_thread() => unsafe {
                Self::moved(ptr, layout, new_size, |p| MiMalloc.dealloc(p, layout))
            },
            // SAFETY: mimalloc's block, as the caller's.
            None => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zeroed block of each kind, written, grown, shrunk and freed
    /// through the allocator as `Vec` and `Box` would.
    #[test]
    fn blocks_keep_their_bytes_through_realloc_and_go_back_where_they_came_from() {
        let a = FreshZeroed;
        for (size, align, mapped) in [
            (MAPPED_FROM, 8, true),
            (MAPPED_FROM * 3 + 5, 64, true),
            (MAPPED_FROM, PAGE * 2, false),
            (MAPPED_FROM - 1, 8, false),
            (100, 8, false),
        ] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero size; every block is used within its
            // layout and freed with it.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                assert_eq!(slot_of(p, layout).is_some(), mapped, "{size} {align}");
                let bytes = std::slice::from_raw_parts_mut(p, size);
                assert!(bytes.iter().all(|&b| b == 0));
                for (b, n) in bytes.iter_mut().zip((0..251u8).cycle()) {
                    *b = n;
                }
                let grown = a.realloc(p, layout, size * 2);
                let grown_layout = Layout::from_size_align(size * 2, align).unwrap();
                assert!(slot_of(grown, grown_layout).is_none());
                let bytes = std::slice::from_raw_parts(grown, size);
                assert!(bytes.iter().zip((0..251u8).cycle()).all(|(&b, n)| b == n));
                a.dealloc(grown, grown_layout);

                let p = a.alloc_zeroed(layout);
                *p.add(size - 1) = 7;
                let shrunk = a.realloc(p, layout, size / 2 + 1);
                let shrunk_layout = Layout::from_size_align(size / 2 + 1, align).unwrap();
                assert_eq!(*shrunk, 0);
                a.dealloc(shrunk, shrunk_layout);
            }
        }
    }

    /// A block a sled I/O thread allocates is the C library's, and goes
    /// back to it from whichever thread grows or frees it; another
    /// thread's is mimalloc's.
    #[test]
    fn a_sled_io_threads_blocks_are_the_c_librarys_wherever_they_are_freed() {
        let layout = Layout::from_size_align(100, 8).unwrap();
        let made = std::thread::Builder::new()
            .name("sled-io-3".into())
            .spawn(move || {
                // SAFETY: a non-zero size; used within the layout.
                unsafe {
                    let p = FreshZeroed.alloc(layout);
                    p.write_bytes(7, 100);
                    let z = FreshZeroed.alloc_zeroed(layout);
                    (p as usize, z as usize)
                }
            })
            .unwrap()
            .join()
            .unwrap();
        let (p, z) = (made.0 as *mut u8, made.1 as *mut u8);
        assert!(pool_blocks::owns(p) && pool_blocks::owns(z));
        // SAFETY: the blocks above, with their layouts; each freed once.
        unsafe {
            assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
            FreshZeroed.dealloc(z, layout);
            let grown = FreshZeroed.realloc(p, layout, 5000);
            assert!(pool_blocks::owns(grown));
            assert!(std::slice::from_raw_parts(grown, 100)
                .iter()
                .all(|&b| b == 7));
            FreshZeroed.dealloc(grown, Layout::from_size_align(5000, 8).unwrap());
            let mine = FreshZeroed.alloc(layout);
            assert!(!pool_blocks::owns(mine));
            FreshZeroed.dealloc(mine, layout);
        }
    }

    /// On a pool thread: a large zeroed block is still a mapping; a C
    /// block grown past that size, or over-aligned, stays the C
    /// library's; a block of mimalloc's it grows moves to the C library.
    #[test]
    fn a_pool_thread_takes_no_page_of_mimallocs() {
        let small = Layout::from_size_align(100, 8).unwrap();
        let large = Layout::from_size_align(MAPPED_FROM, 8).unwrap();
        // SAFETY: as above; each block freed once, with its layout.
        unsafe {
            let main_block = FreshZeroed.alloc(small) as usize;
            let made = std::thread::Builder::new()
                .name("sled-io-9".into())
                .spawn(move || {
                    let mapped = FreshZeroed.alloc_zeroed(large);
                    let c = FreshZeroed.alloc(small);
                    c.write_bytes(5, 100);
                    let grown = FreshZeroed.realloc(c, small, MAPPED_FROM * 2);
                    let aligned: Vec<(usize, Layout)> = [64, PAGE]
                        .into_iter()
                        .map(|align| {
                            let layout = Layout::from_size_align(200, align).unwrap();
                            (FreshZeroed.alloc(layout) as usize, layout)
                        })
                        .collect();
                    let moved = FreshZeroed.realloc(main_block as *mut u8, small, 300);
                    (mapped as usize, grown as usize, aligned, moved as usize)
                })
                .unwrap()
                .join()
                .unwrap();
            let (mapped, grown, aligned, moved) = made;
            let mapped = mapped as *mut u8;
            assert!(slot_of(mapped, large).is_some());
            FreshZeroed.dealloc(mapped, large);
            let grown = grown as *mut u8;
            let grown_layout = Layout::from_size_align(MAPPED_FROM * 2, 8).unwrap();
            assert!(pool_blocks::owns(grown) && slot_of(grown, grown_layout).is_none());
            assert!(std::slice::from_raw_parts(grown, 100)
                .iter()
                .all(|&b| b == 5));
            FreshZeroed.dealloc(grown, grown_layout);
            for (p, layout) in aligned {
                assert_eq!(p % layout.align(), 0);
                assert!(pool_blocks::owns(p as *mut u8));
                FreshZeroed.dealloc(p as *mut u8, layout);
            }
            assert!(pool_blocks::owns(moved as *mut u8));
            FreshZeroed.dealloc(moved as *mut u8, Layout::from_size_align(300, 8).unwrap());
        }
    }

    /// A block of mimalloc's as large as a mapping is told apart by
    /// address, not size; a freed mapping's slot is free again.
    #[test]
    fn a_large_block_of_mimallocs_is_not_taken_for_a_mapping() {
        let a = FreshZeroed;
        let layout = Layout::from_size_align(MAPPED_FROM * 2, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(layout);
            assert!(slot_of(p, layout).is_none());
            a.dealloc(p, layout);
            // Other tests map blocks meanwhile: only `p`'s slots count.
            let p = a.alloc_zeroed(layout);
            let naming = || {
                let address = p as usize;
                MAPPED
                    .iter()
                    .filter(|s| s.load(Ordering::Acquire) == address)
                    .count()
            };
            assert_eq!(naming(), 1);
            a.dealloc(p, layout);
            assert_eq!(naming(), 0);
        }
    }
}
