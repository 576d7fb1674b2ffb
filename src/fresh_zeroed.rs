//! The binary's allocator: mimalloc, except that a large zeroed
//! allocation is a fresh mapping of the OS's, whose pages stay unbacked
//! until written.
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

use mimalloc::MiMalloc;
use rustix::mm::{MapFlags, ProtFlags};

/// Zeroed allocations from this size on are mapped; below it, one page
/// of mimalloc's is cheaper than a system call and a fault per page.
const MAPPED_FROM: usize = 256 << 10;
/// What a mapping's start is aligned to.
const PAGE: usize = 4096;

pub struct FreshZeroed;

/// Whether `ptr`, of `layout`, is a mapping of ours: only a zeroed one
/// could be, and mimalloc knows all of its own memory.
fn is_mapped(ptr: *mut u8, layout: Layout) -> bool {
    // SAFETY: `mi_is_in_heap_region` only compares the address with
    // mimalloc's segment map and arenas; it never reads through it.
    layout.size() >= MAPPED_FROM && !unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
}

// SAFETY: every block comes from mimalloc or from an anonymous private
// mapping of at least its size, page-aligned (so aligned to `align` up to
// a page), and goes back to where it came from: `is_mapped` tells the two
// apart by address.
unsafe impl GlobalAlloc for FreshZeroed {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller's.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < MAPPED_FROM || layout.align() > PAGE {
            // SAFETY: as the caller's.
            return unsafe { MiMalloc.alloc_zeroed(layout) };
        }
        // SAFETY: a new mapping, at an address the OS picks.
        let mapped = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                layout.size(),
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        };
        mapped.map_or(std::ptr::null_mut(), <*mut c_void>::cast)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mapped(ptr, layout) {
            // SAFETY: the whole mapping `alloc_zeroed` made for this
            // layout, no longer used. A failure leaves it mapped: a leak,
            // never a fault.
            let _ = unsafe { rustix::mm::munmap(ptr.cast::<c_void>(), layout.size()) };
        } else {
            // SAFETY: mimalloc's block, as the caller's.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !is_mapped(ptr, layout) {
            // SAFETY: mimalloc's block, as the caller's.
            return unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` with the old alignment is a valid layout, as
        // the caller guarantees.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a new block from mimalloc; both are valid for the bytes
        // copied, and distinct.
        unsafe {
            let new = MiMalloc.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
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
                assert_eq!(is_mapped(p, layout), mapped, "{size} {align}");
                let bytes = std::slice::from_raw_parts_mut(p, size);
                assert!(bytes.iter().all(|&b| b == 0));
                for (b, n) in bytes.iter_mut().zip((0..251u8).cycle()) {
                    *b = n;
                }
                let grown = a.realloc(p, layout, size * 2);
                let grown_layout = Layout::from_size_align(size * 2, align).unwrap();
                assert!(!is_mapped(grown, grown_layout));
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

    /// A block of mimalloc's as large as a mapping is told apart by
    /// address, not size.
    #[test]
    fn a_large_block_of_mimallocs_is_not_taken_for_a_mapping() {
        let a = FreshZeroed;
        let layout = Layout::from_size_align(MAPPED_FROM * 2, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(layout);
            assert!(!is_mapped(p, layout));
            a.dealloc(p, layout);
        }
    }
}
