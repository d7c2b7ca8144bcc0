//! Test builds count each thread's allocations, so that a test can say how
//! many a piece of the per-query path makes: a miss's reply is read, stored
//! and handed on with a promised number of them (`BENCHMARKS.md` counts the
//! same in the running binary). It sits in the lowest folder so that the
//! tests of every folder can use it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static MADE: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // A thread being torn down has no count left to keep.
    let _ = MADE.try_with(|made| made.set(made.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// count is a thread-local cell that allocates nothing itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as the caller promised us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as the caller promised us.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as the caller promised us.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised us.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// What `work` returns, and how many allocations (or reallocations) it made
/// on this thread.
pub(crate) fn made_by<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = MADE.with(Cell::get);
    let out = work();
    (out, MADE.with(Cell::get) - before)
}
