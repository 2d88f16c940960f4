//! The one `unsafe` call of the workspace: telling glibc's malloc to give large
//! buffers back to the system as soon as they are freed.
//!
//! Why: an upload streams through part buffers of `storage.part_size_bytes` (8 MiB).
//! glibc serves allocations above `M_MMAP_THRESHOLD` with their own mapping, but by
//! default it raises that threshold to the size of every mapped block freed, so
//! after the first part the buffers come from the per-thread arenas and stay there
//! when freed. A 1 GiB push then left the server at a peak RSS of 79–85 MiB against
//! 37 MiB idle; with the threshold fixed at 1 MiB it peaks at 35–43 MiB, and each part
//! is a fresh mapping whose pages fault in: the push rate was 7 % lower on average,
//! within the spread of the runs (BENCHMARKS.md, issue 2). A fixed threshold also stops the dynamic
//! adjustment of the trim threshold, so the heap top is returned as before.
//!
//! Why it is sound: `mallopt` only sets a parameter of the allocator; glibc takes
//! its own lock, it may be called at any time from any thread, and it has no
//! pointer arguments. Other C libraries have no such call, so elsewhere this is a
//! no-op.

/// Allocations of at least this many bytes get their own mapping, returned on free.
pub const MMAP_THRESHOLD_BYTES: usize = 1024 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`]; `true` when it did.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn return_large_buffers_on_free() -> bool {
    // The constant fits an i32 (the parameter's C type).
    let threshold = MMAP_THRESHOLD_BYTES as libc::c_int;
    // SAFETY: see the module docs; mallopt reads two integers and returns 0 or 1.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1 }
}

/// Not glibc: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn return_large_buffers_on_free() -> bool {
    false
}

// Only glibc has the behaviour under test.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn rss_anon_bytes() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Allocates and touches `parts` buffers of `size` bytes, frees them, and
    /// returns how much anonymous memory the process still holds beyond `before`.
    fn retained_after_parts(parts: usize, size: usize, before: usize) -> isize {
        let buffers: Vec<Vec<u8>> = (0..parts).map(|i| vec![i as u8 | 1; size]).collect();
        assert!(buffers.iter().all(|b| b[size - 1] != 0));
        drop(buffers);
        rss_anon_bytes() as isize - before as isize
    }

    #[test]
    fn freed_part_buffers_leave_the_process() {
        assert!(return_large_buffers_on_free());
        // Without the fixed threshold, freeing this mapped 16 MiB block raises the
        // threshold to 16 MiB and the trim threshold to 32 MiB, so the three 8 MiB
        // parts below come from an arena, and their 24 MiB stay resident when freed.
        drop(vec![1u8; 16 * MIB]);
        let before = rss_anon_bytes();
        let retained = retained_after_parts(3, 8 * MIB, before);
        assert!(
            retained < (8 * MIB) as isize,
            "{} MiB of freed 8 MiB buffers is still resident",
            retained / MIB as isize
        );
    }
}
