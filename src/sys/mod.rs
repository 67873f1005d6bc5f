//! The operating system's specifics, in one place: thread timer slack, a background thread's
//! scheduling, timerfd, and zeroed anonymous memory with huge pages. Linux calls behind
//! `cfg(target_os = "linux")`; elsewhere (other Unixes: macOS laptops) the scheduling and slack
//! calls do nothing, memory comes from the allocator, and the timerfd that the engine's pacing
//! needs is an error, so `report`, `extract` and `edge` still build and run there.

use std::time::Duration;

/// Makes the calling thread's timer wake-ups precise: the default 50 us timer slack would make
/// every paced send that much late.
pub(crate) fn precise_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Lowers the calling thread for good (best effort, never fails): SCHED_BATCH (no wake-up
/// preemption) and nice +10. For a thread that does only bookkeeping while others keep time
/// (the engine's aggregator: its once-an-interval burst must not delay the workers). Threads
/// it starts later inherit this.
pub(crate) fn background_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param (all zero: priority 0,
    // and musl's sporadic-server fields unused); only a thread on the
    // default policy is changed. gettid has no preconditions; get/setpriority with PRIO_PROCESS
    // and a thread id change that thread only (Linux); getpriority may return -1 as a value.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_getscheduler(0) == libc::SCHED_OTHER {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        if *libc::__errno_location() == 0 && nice < 10 {
            libc::setpriority(libc::PRIO_PROCESS, tid, nice + 10);
        }
    }
}

/// One positioned read (`pread`): a file read by several threads at once, each at its place.
pub(crate) fn read_at(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_at(f, buf, off);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_read(f, buf, off);
}

/// The machine's physical memory in bytes, if it can be read.
pub(crate) fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf reads a system value; no memory is passed
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| (pages as usize).saturating_mul(size as usize))
}

/// Hands memory the allocator holds free back to the system (glibc keeps freed heap pages).
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process or the system ran out of open files (EMFILE, ENFILE).
pub(crate) fn is_out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The soft limit of open files, if it can be read.
pub(crate) fn open_files_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    // (rlim_t is u64 on Linux, not on every Unix)
    #[allow(clippy::unnecessary_cast)]
    ok.then_some(r.rlim_cur as u64)
}

/// Makes room for `needed` open files: raises the soft RLIMIT_NOFILE up to the hard limit when
/// it is lower. `Err((soft, hard))` when even the hard limit is too low.
pub(crate) fn open_files(needed: u64) -> Result<(), (u64, u64)> {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid rlimit for this process
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Ok(()); // unknown: let the system say
        }
        // (rlim_t is u64 on Linux, not on every Unix)
        #[allow(clippy::unnecessary_cast)]
        let (soft, hard) = (r.rlim_cur as u64, r.rlim_max as u64);
        if soft >= needed {
            return Ok(());
        }
        if hard < needed {
            return Err((soft, hard));
        }
        r.rlim_cur = needed as libc::rlim_t;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
            return Err((soft, hard));
        }
    }
    Ok(())
}

/// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd.
#[cfg(target_os = "linux")]
pub(crate) fn timerfd() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: timerfd_create returns a new descriptor we own, or -1
    let raw = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a valid descriptor, owned from here on
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// Arms a timerfd to expire once, `after` from now (at least 1 ns).
#[cfg(target_os = "linux")]
pub(crate) fn arm_timerfd(fd: std::os::fd::BorrowedFd<'_>, after: Duration) {
    use std::os::fd::AsRawFd;
    let d = after.max(Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            // (time_t: i64 on glibc and on musl since 1.2; `_` follows the target's)
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: a valid timerfd and a fully initialised itimerspec
    unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
}

/// Gives back the pages of the executable's relocation table (`.rela.dyn`, 1.4 MB): the loader
/// reads it once to relocate a position-independent executable, and nothing reads it again,
/// but its pages stay in the process's RSS. Clean file-backed pages: dropping them changes
/// nothing (a read would fault them back in from the file). Best effort; call it first thing.
pub fn release_startup_pages() {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        unsafe extern "C" fn first(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            out: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: the loader passes a valid dl_phdr_info; `out` is the (usize, usize) below
            unsafe {
                let info = &*info;
                let out = &mut *(out as *mut (usize, usize));
                let bias = info.dlpi_addr as usize;
                for i in 0..info.dlpi_phnum as usize {
                    let ph = &*info.dlpi_phdr.add(i);
                    if ph.p_type != libc::PT_DYNAMIC {
                        continue;
                    }
                    // Elf64_Dyn: (d_tag: i64, d_un: u64) pairs up to DT_NULL
                    let mut d = (bias + ph.p_vaddr as usize) as *const [u64; 2];
                    let (mut rela, mut size) = (0usize, 0usize);
                    while (*d)[0] != 0 {
                        match (*d)[0] {
                            7 => rela = (*d)[1] as usize, // DT_RELA
                            8 => size = (*d)[1] as usize, // DT_RELASZ
                            _ => {}
                        }
                        d = d.add(1);
                    }
                    // glibc relocates the d_ptr entries of .dynamic in place; a link-time
                    // address is below the load bias
                    let at = if rela < bias { bias + rela } else { rela };
                    // only inside the executable's first (read-only) segment
                    let seg = (0..info.dlpi_phnum as usize)
                        .map(|j| &*info.dlpi_phdr.add(j))
                        .find(|p| {
                            p.p_type == libc::PT_LOAD && p.p_offset == 0 && p.p_flags == libc::PF_R
                        });
                    if let Some(seg) = seg {
                        let (lo, hi) = (
                            bias + seg.p_vaddr as usize,
                            bias + (seg.p_vaddr + seg.p_memsz) as usize,
                        );
                        if rela != 0 && at >= lo && at.saturating_add(size) <= hi {
                            *out = (at, size);
                        }
                    }
                }
            }
            1 // the first object is the executable: stop
        }
        let mut range = (0usize, 0usize);
        // SAFETY: the callback only reads the loader's structures and writes `range`
        unsafe { libc::dl_iterate_phdr(Some(first), (&mut range as *mut (usize, usize)).cast()) };
        // SAFETY: sysconf has no preconditions
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return,
        };
        let (start, end) = (
            (range.0 + page - 1) & !(page - 1),
            (range.0 + range.1) & !(page - 1),
        );
        if range.1 > 0 && end > start {
            // SAFETY: whole pages inside the executable's read-only relocation table, which is
            // never written; MADV_DONTNEED on clean private file pages only drops them from RSS
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
}

/// Elsewhere there is no timerfd: the engine's pacing cannot start (a clear error), while
/// `report`, `extract`, `edge` and the rest work.
#[cfg(not(target_os = "linux"))]
pub(crate) fn timerfd() -> std::io::Result<std::os::fd::OwnedFd> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the engine's precise pacing needs Linux (timerfd)",
    ))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn arm_timerfd(_fd: std::os::fd::BorrowedFd<'_>, _after: Duration) {}

/// Huge-page size the zeroed mappings align to.
#[cfg(target_os = "linux")]
const HUGE: usize = 2 << 20;

/// `size` zeroed bytes, 64-aligned (at least). On Linux straight from the kernel (no memset:
/// fresh anonymous pages are zero; the allocator would zero them again for an alignment of
/// 64), from 2 MiB on 2 MiB-aligned and advised for huge pages, and populated writable in one
/// call. Free with `free_zeroed(p, size)`.
pub(crate) fn alloc_zeroed(size: usize) -> *mut u8 {
    #[cfg(target_os = "linux")]
    {
        let huge = size >= HUGE;
        let extra = if huge { HUGE } else { 0 };
        // SAFETY: an anonymous private mapping; an unaligned head and tail are unmapped at once
        // and nothing else refers to them
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                size + extra,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                std::alloc::handle_alloc_error(
                    std::alloc::Layout::from_size_align(size, 64).expect("layout"),
                );
            }
            if !huge {
                populate(p, size);
                return p.cast();
            }
            let addr = p as usize;
            let aligned = (addr + HUGE - 1) & !(HUGE - 1);
            if aligned > addr {
                libc::munmap(p, aligned - addr);
            }
            let tail = addr + size + HUGE - (aligned + size);
            if tail > 0 {
                libc::munmap((aligned + size) as *mut libc::c_void, tail);
            }
            libc::madvise(aligned as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
            populate(aligned as *mut libc::c_void, size);
            aligned as *mut u8
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let layout = std::alloc::Layout::from_size_align(size.max(1), 64).expect("layout");
        // SAFETY: a non-zero size
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        p
    }
}

/// Frees what `alloc_zeroed(size)` returned.
///
/// # Safety
/// `p` came from `alloc_zeroed(size)` with this `size`, and is not used after.
pub(crate) unsafe fn free_zeroed(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: mapped by alloc_zeroed with this size
    unsafe {
        libc::munmap(p.cast(), size);
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: allocated by alloc_zeroed with this layout
    unsafe {
        std::alloc::dealloc(
            p,
            std::alloc::Layout::from_size_align(size.max(1), 64).expect("layout"),
        );
    }
}

/// Backs a fresh mapping with writable zeroed pages in one call. Hashed keys touch every page
/// anyway, and page by page each first probe (a read) would map the shared zero page and the
/// first write would then replace it: a second fault and a TLB flush on every thread.
/// Best effort (Linux 5.14+); without it the pages fault in as before.
///
/// # Safety
/// `p..p + size` is a private anonymous mapping of this process.
#[cfg(target_os = "linux")]
unsafe fn populate(p: *mut libc::c_void, size: usize) {
    // SAFETY: per the contract; populating changes no contents (fresh pages are zero)
    unsafe { libc::madvise(p, size, libc::MADV_POPULATE_WRITE) };
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    fn nice() -> libc::c_int {
        // SAFETY: reads the calling thread's nice value
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    fn policy() -> libc::c_int {
        // SAFETY: reads the calling thread's policy
        unsafe { libc::sched_getscheduler(0) }
    }

    /// A background thread lowers only itself: the thread that started it, and one started
    /// before, keep their scheduling (so a second run in the same process is not slowed).
    #[test]
    fn a_background_thread_lowers_only_itself() {
        let (p0, n0) = (policy(), nice());
        let (p1, n1) = std::thread::spawn(|| {
            super::background_thread();
            (policy(), nice())
        })
        .join()
        .unwrap();
        // (tests may run already lowered, under `nice` or `chrt -b`: expect what is left)
        let want_p = if p0 == libc::SCHED_OTHER {
            libc::SCHED_BATCH
        } else {
            p0
        };
        assert_eq!((p1, n1), (want_p, if n0 < 10 { n0 + 10 } else { n0 }));
        assert_eq!((policy(), nice()), (p0, n0));
    }

    /// The relocation table's pages go; what was relocated through it keeps working (trait
    /// objects, formatting: their vtables live in .data.rel.ro, relocated at load).
    #[test]
    fn releasing_the_relocation_table_leaves_the_process_working() {
        super::release_startup_pages();
        super::release_startup_pages();
        let d: Box<dyn std::fmt::Display> = Box::new(42u64);
        assert_eq!(format!("{d} {:?}", Some("x")), "42 Some(\"x\")");
    }

    #[test]
    fn zeroed_memory_is_zero_and_aligned() {
        for size in [4096, 3 << 20] {
            let p = super::alloc_zeroed(size);
            assert_eq!(p as usize % 64, 0);
            // SAFETY: size bytes were just allocated
            let s = unsafe { std::slice::from_raw_parts(p, size) };
            assert!(s.iter().all(|&b| b == 0));
            // SAFETY: from alloc_zeroed(size)
            unsafe { super::free_zeroed(p, size) };
        }
    }
}
