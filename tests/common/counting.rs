//! A counting global allocator for the memory tests (`json_cost.rs`, `typed_memory.rs`):
//! each request rounded to mimalloc's size class, as the service's allocator does. A test
//! installs it with `#[global_allocator] static GLOBAL: Counting = Counting;`. Each test
//! reads part of what it measures.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use dvt_cds::json_cost::size_class;

pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(size_class(layout.size()), Relaxed) + size_class(layout.size());
        PEAK.fetch_max(live, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size_class(layout.size()), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the allocator may do it: the new block, then the old one freed.
        let live = LIVE.fetch_add(size_class(new_size), Relaxed) + size_class(new_size);
        PEAK.fetch_max(live, Relaxed);
        LIVE.fetch_sub(size_class(layout.size()), Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The counters are global: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The counters see every thread's allocations: a test that measures holds this for its
/// whole body, so that another test of the same binary (building or dropping its bodies
/// on another thread) cannot move the counters under a measurement.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hold for the whole of a test that measures (see [`SERIAL`]).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// What `f` allocates: the most bytes live at once while it runs (its scratch, transient
/// copies, its result), and the bytes still live when it returns (its result, dropped
/// before the next measurement may start).
pub struct Measured {
    pub peak: usize,
    pub kept: usize,
}

pub fn measure<T>(f: impl FnOnce() -> T) -> Measured {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let value = f();
    let peak = PEAK.load(Relaxed) - before;
    let kept = LIVE.load(Relaxed).saturating_sub(before);
    drop(value);
    Measured { peak, kept }
}
