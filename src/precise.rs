//! Sub-millisecond sleeping. tokio's timer wheel has 1 ms resolution and rounds deadlines up, so
//! a paced request leaves up to ~1 ms late and an edge "1 ms" delay lasts 1-2 ms. A
//! `PreciseTimer` is one thread that sleeps on a condition variable until the earliest deadline
//! (the kernel's hrtimers: tens of microseconds) and wakes the waiting futures. Create one per
//! runtime thread that needs it; it stops when its last handle is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

struct Entry {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct Queue {
    heap: BinaryHeap<(Reverse<Instant>, Reverse<u64>, ArcEntry)>,
    seq: u64,
    closed: bool,
}

/// A heap payload that takes no part in the ordering (deadline and sequence number decide).
struct Unordered<T>(T);
impl<T> PartialEq for Unordered<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Unordered<T> {}
impl<T> PartialOrd for Unordered<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Unordered<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

type ArcEntry = Unordered<Arc<Entry>>;

struct Shared {
    q: Mutex<Queue>,
    cv: Condvar,
}

/// Handle to a timer thread.
pub struct PreciseTimer {
    shared: Arc<Shared>,
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.q.lock() {
            q.closed = true;
        }
        self.shared.cv.notify_one();
    }
}

impl PreciseTimer {
    pub fn new(name: &str) -> std::io::Result<PreciseTimer> {
        let shared = Arc::new(Shared {
            q: Mutex::new(Queue {
                heap: BinaryHeap::new(),
                seq: 0,
                closed: false,
            }),
            cv: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(&s))?;
        Ok(PreciseTimer { shared })
    }

    /// A future that completes at `deadline` (immediately if it has passed).
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Sleep {
            timer: self,
            deadline,
            entry: None,
        }
    }
}

fn run(s: &Shared) {
    crate::sys::precise_timer_slack();
    let mut q = match s.q.lock() {
        Ok(q) => q,
        Err(_) => return,
    };
    loop {
        if q.closed {
            // wake whoever still waits so nothing hangs
            while let Some((_, _, e)) = q.heap.pop() {
                fire(&e.0);
            }
            return;
        }
        let now = Instant::now();
        while q.heap.peek().is_some_and(|(Reverse(d), _, _)| *d <= now) {
            if let Some((_, _, e)) = q.heap.pop() {
                fire(&e.0);
            }
        }
        q = match q.heap.peek() {
            Some((Reverse(d), _, _)) => {
                let wait = d.saturating_duration_since(now);
                match s.cv.wait_timeout(q, wait) {
                    Ok((q, _)) => q,
                    Err(_) => return,
                }
            }
            None => match s.cv.wait(q) {
                Ok(q) => q,
                Err(_) => return,
            },
        };
    }
}

fn fire(e: &Entry) {
    e.fired.store(true, Ordering::Release);
    if let Some(w) = e.waker.lock().ok().and_then(|mut w| w.take()) {
        w.wake();
    }
}

pub struct Sleep<'a> {
    timer: &'a PreciseTimer,
    deadline: Instant,
    entry: Option<Arc<Entry>>,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.entry {
            Some(e) => {
                if e.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                if let Ok(mut w) = e.waker.lock() {
                    *w = Some(cx.waker().clone());
                }
                // it may have fired between the check and storing the waker
                if e.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            None => {
                let e = Arc::new(Entry {
                    fired: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                let deadline = self.deadline;
                let earliest = {
                    let Ok(mut q) = self.timer.shared.q.lock() else {
                        return Poll::Ready(());
                    };
                    let earliest = q.heap.peek().is_none_or(|(Reverse(d), _, _)| deadline < *d);
                    q.seq += 1;
                    let seq = q.seq;
                    q.heap
                        .push((Reverse(deadline), Reverse(seq), Unordered(e.clone())));
                    earliest
                };
                if earliest {
                    self.timer.shared.cv.notify_one();
                }
                self.entry = Some(e);
                Poll::Pending
            }
        }
    }
}

/// Precise sleeping on the calling thread's current_thread runtime: one timerfd registered with
/// the runtime's own reactor, armed for the earliest deadline. Unlike `PreciseTimer` no helper
/// thread is involved, so a paced send costs one syscall (arm) instead of a futex and an
/// eventfd round trip between threads. `drive` must run on the same runtime (joined or selected
/// with the futures that sleep). Linux only.
pub struct LocalTimer {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    state: std::cell::RefCell<LocalState>,
}

struct LocalEntry {
    fired: std::cell::Cell<bool>,
    waker: std::cell::RefCell<Option<Waker>>,
}

impl LocalEntry {
    /// Marks the sleep as due and wakes its task.
    fn fire(&self) {
        self.fired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

type RcEntry = Unordered<std::rc::Rc<LocalEntry>>;

#[derive(Default)]
struct LocalState {
    heap: BinaryHeap<(Reverse<Instant>, Reverse<u64>, RcEntry)>,
    seq: u64,
    armed: Option<Instant>,
    /// the driver waits for an earlier deadline than the one armed
    kicked: bool,
    driver: Option<Waker>,
}

impl LocalTimer {
    /// Must be called inside the runtime (it registers with its reactor).
    pub fn new() -> std::io::Result<LocalTimer> {
        let fd = crate::sys::timerfd()?;
        // SAFETY: an OwnedFd stays open and returns the same descriptor until it is dropped
        // with the AsyncFd
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        Ok(LocalTimer {
            fd,
            state: Default::default(),
        })
    }

    /// A future that completes at `deadline` (immediately if it has passed).
    pub fn sleep_until(&self, deadline: Instant) -> LocalSleep<'_> {
        LocalSleep {
            timer: self,
            deadline,
            entry: None,
        }
    }

    /// Ticks at `start`, `start + period`, `start + 2 * period`, ... on this timer (what the
    /// thread's periodic helpers use instead of tokio's interval: the lean-client runtimes run
    /// without tokio's time driver). Ticks missed while the thread was busy are not replayed:
    /// one tick, then the next boundary after it. `wake_all` makes a tick come early.
    pub fn interval_at(&self, start: Instant, period: Duration) -> LocalInterval<'_> {
        LocalInterval {
            period: period.max(Duration::from_micros(1)),
            next: start,
            sleep: self.sleep_until(start),
        }
    }

    /// Wakes every sleeper now (a run being stopped); later sleeps wait as usual.
    pub fn wake_all(&self) {
        let mut st = self.state.borrow_mut();
        for (_, _, e) in st.heap.drain() {
            e.0.fire();
        }
    }

    fn arm(&self, deadline: Instant) {
        use std::os::fd::AsFd;
        let d = deadline.saturating_duration_since(Instant::now());
        crate::sys::arm_timerfd(self.fd.get_ref().as_fd(), d);
    }

    /// Fires due sleepers and keeps the timerfd armed for the next; never returns.
    pub async fn drive(&self) {
        loop {
            let next = {
                let mut st = self.state.borrow_mut();
                let now = Instant::now();
                while st.heap.peek().is_some_and(|(Reverse(d), _, _)| *d <= now) {
                    if let Some((_, _, e)) = st.heap.pop() {
                        e.0.fire();
                    }
                }
                let next = st.heap.peek().map(|(Reverse(d), _, _)| *d);
                st.kicked = false;
                if next.is_some() && st.armed != next {
                    st.armed = next;
                    drop(st);
                    if let Some(d) = next {
                        self.arm(d);
                    }
                }
                next
            };
            let kick = std::future::poll_fn(|cx| {
                let mut st = self.state.borrow_mut();
                if st.kicked {
                    st.kicked = false;
                    Poll::Ready(())
                } else {
                    st.driver = Some(cx.waker().clone());
                    Poll::Pending
                }
            });
            if next.is_none() {
                kick.await;
                continue;
            }
            // Not read: tokio registers the timerfd edge-triggered, and every expiry wakes its
            // waiters, so each expiry is an event whether or not the count was read; the loop
            // arms the timer again before it waits (a read was one syscall per paced send).
            let fired = async {
                if let Ok(mut guard) = self.fd.readable().await {
                    guard.clear_ready();
                }
            };
            futures_util::pin_mut!(kick);
            futures_util::pin_mut!(fired);
            let _ = futures_util::future::select(kick, fired).await;
            self.state.borrow_mut().armed = None;
        }
    }
}

/// See `LocalTimer::interval_at`.
pub struct LocalInterval<'a> {
    period: Duration,
    /// the boundary `sleep` waits for
    next: Instant,
    sleep: LocalSleep<'a>,
}

impl LocalInterval<'_> {
    /// Ready with the time of the tick once the next boundary has passed.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        if self.next <= now {
            let behind = (now - self.next).as_nanos() / self.period.as_nanos();
            let steps = u32::try_from(behind + 1).unwrap_or(u32::MAX);
            self.next += self.period.saturating_mul(steps);
        }
        self.sleep = self.sleep.timer.sleep_until(self.next);
        Poll::Ready(now)
    }

    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }
}

pub struct LocalSleep<'a> {
    timer: &'a LocalTimer,
    deadline: Instant,
    entry: Option<std::rc::Rc<LocalEntry>>,
}

impl Future for LocalSleep<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(e) = &self.entry {
            if e.fired.get() || Instant::now() >= self.deadline {
                return Poll::Ready(());
            }
            *e.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let e = std::rc::Rc::new(LocalEntry {
            fired: std::cell::Cell::new(false),
            waker: std::cell::RefCell::new(Some(cx.waker().clone())),
        });
        let deadline = self.deadline;
        {
            let mut st = self.timer.state.borrow_mut();
            st.seq += 1;
            let seq = st.seq;
            st.heap
                .push((Reverse(deadline), Reverse(seq), Unordered(e.clone())));
            if st.armed.is_none_or(|a| deadline < a) {
                st.kicked = true;
                if let Some(w) = st.driver.take() {
                    w.wake();
                }
            }
        }
        self.entry = Some(e);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 40 sleeps on time; then a later sleeper registered before an earlier one: the earlier
    /// wakes first, and on time.
    async fn check<F: Future<Output = ()>>(sleep: impl Fn(Instant) -> F) {
        let start = Instant::now();
        let mut late = Vec::new();
        for i in 1..=40u64 {
            let d = start + Duration::from_micros(1300 * i);
            sleep(d).await;
            late.push(Instant::now() - d);
        }
        late.sort();
        // tokio's own timer rounds up to the next millisecond: ~1 ms late at the median.
        // Measured here: ~40-90 us. Generous bound for a shared machine.
        assert!(
            late[20] < Duration::from_micros(500),
            "median lateness {:?}",
            late[20]
        );
        let now = Instant::now();
        let (a, b) = (
            now + Duration::from_millis(40),
            now + Duration::from_millis(5),
        );
        let order = std::cell::RefCell::new(Vec::new());
        futures_util::join!(
            async {
                sleep(a).await;
                order.borrow_mut().push(('a', Instant::now() - a));
            },
            async {
                sleep(b).await;
                order.borrow_mut().push(('b', Instant::now() - b));
            }
        );
        let o = order.borrow();
        assert_eq!((o[0].0, o[1].0), ('b', 'a'));
        assert!(o[0].1 < Duration::from_millis(3), "{:?}", o[0].1);
    }

    /// An interval ticks on its boundaries (aligned to its start, never early), and after the
    /// thread was busy for several periods it ticks once, then on the next boundary.
    #[test]
    fn local_interval_ticks_on_its_boundaries_and_skips_missed_ones() {
        rt().block_on(async {
            let t = LocalTimer::new().unwrap();
            let work = async {
                let period = Duration::from_millis(5);
                let start = Instant::now() + period;
                let mut iv = t.interval_at(start, period);
                let mut late = Vec::new();
                for k in 0..4u32 {
                    let at = iv.tick().await;
                    let due = start + period * k;
                    assert!(at >= due, "tick {k} came early");
                    late.push(at - due);
                }
                late.sort();
                assert!(late[1] < Duration::from_millis(3), "{late:?}");
                // busy past boundaries 4, 5 and 6: one tick now, then boundary 7
                std::thread::sleep(period * 3);
                let (busy_end, at) = (Instant::now(), iv.tick().await);
                assert!(at - busy_end < Duration::from_millis(3));
                let at = iv.tick().await;
                assert!(at >= start + period * 7, "a missed tick was replayed");
            };
            let drive = t.drive();
            futures_util::pin_mut!(work);
            futures_util::pin_mut!(drive);
            futures_util::future::select(work, drive).await;
        });
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn wakes_in_order_and_on_time() {
        let t = PreciseTimer::new("t").unwrap();
        rt().block_on(check(|d| t.sleep_until(d)));
    }

    #[test]
    fn local_timer_wakes_in_order_on_time_and_for_an_earlier_deadline() {
        rt().block_on(async {
            let t = LocalTimer::new().unwrap();
            let work = check(|d| t.sleep_until(d));
            let drive = t.drive();
            futures_util::pin_mut!(work);
            futures_util::pin_mut!(drive);
            futures_util::future::select(work, drive).await;
        });
    }
}
