//! The aggregating thread's scheduling. Once an interval it merges the threads' histograms,
//! deflates them into the hlog and writes the files: a 1-3 ms burst at 50k req/s. On a machine
//! whose cores are busy with the workers (and, on loopback, the target) that burst preempted
//! one of them at every interval boundary, and the sends due meanwhile left late (episodes of
//! 20-280 late sends at 50k req/s). The bookkeeping is not time-critical, so while the run
//! lasts the thread is SCHED_BATCH (no wake-up preemption) at a lower priority (nice +10); both
//! are undone when the guard drops, as far as the system lets an unprivileged process (raising
//! the priority back may be refused: the thread then stays at the lower one).

/// Restores the thread's scheduling when dropped.
pub(crate) struct Background {
    /// the policy was SCHED_OTHER and is now SCHED_BATCH
    batch: bool,
    /// the nice value before, when it was changed
    nice: Option<libc::c_int>,
}

impl Background {
    /// Lowers the calling thread's scheduling (Linux; best effort, never fails).
    pub(crate) fn this_thread() -> Background {
        let mut g = Background {
            batch: false,
            nice: None,
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param. Only a thread on
        // the default policy is changed (real-time or idle policies are left as they are).
        unsafe {
            if libc::sched_getscheduler(0) == libc::SCHED_OTHER {
                g.batch = libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0;
            }
        }
        // SAFETY: gettid has no preconditions; get/setpriority with PRIO_PROCESS and a thread
        // id change that thread only (Linux). getpriority may return -1 as a value: errno tells.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
            if *libc::__errno_location() == 0
                && nice < 10
                && libc::setpriority(libc::PRIO_PROCESS, tid, nice + 10) == 0
            {
                g.nice = Some(nice);
            }
        }
        g
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // SAFETY: as in `this_thread`; failures are ignored (best effort)
        unsafe {
            if let Some(n) = self.nice {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, n);
            }
            if self.batch && libc::sched_getscheduler(0) == libc::SCHED_BATCH {
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice() -> libc::c_int {
        // SAFETY: as above
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    fn policy() -> libc::c_int {
        // SAFETY: reads the calling thread's policy
        unsafe { libc::sched_getscheduler(0) }
    }

    /// The guard lowers only its own thread, and dropping it restores the policy (and the
    /// nice value where the system allows raising it back).
    #[test]
    fn background_lowers_this_thread_and_restores_it() {
        std::thread::spawn(|| {
            // (tests run already lowered, under `nice` or `chrt -b`, expect what is left)
            let (p0, n0) = (policy(), nice());
            let p1 = if p0 == libc::SCHED_OTHER {
                libc::SCHED_BATCH
            } else {
                p0
            };
            let n1 = if n0 < 10 { n0 + 10 } else { n0 };
            // a thread started before (as the engine starts its workers) is left alone; one
            // started after would inherit the lowered scheduling
            let (go, wait) = std::sync::mpsc::channel::<()>();
            let other = std::thread::spawn(move || {
                wait.recv().unwrap();
                (policy(), nice())
            });
            let g = Background::this_thread();
            assert_eq!((policy(), nice()), (p1, n1));
            go.send(()).unwrap();
            assert_eq!(other.join().unwrap(), (p0, n0));
            let restored_nice = g.nice.is_some();
            drop(g);
            assert_eq!(policy(), p0);
            // raising the priority back needs CAP_SYS_NICE or RLIMIT_NICE (root has them)
            // SAFETY: geteuid has no preconditions
            if unsafe { libc::geteuid() } == 0 {
                assert_eq!(restored_nice, n0 < 10);
            }
            if restored_nice {
                assert_eq!(nice(), n0);
            }
        })
        .join()
        .unwrap();
    }
}
