//! HTTP/2 for the lean client (`--http2`): an origin's requests go over a fixed number of
//! connections a thread (`--connections`, spread over the threads), as many streams on each as
//! the server allows, as h2load does. A connection is opened by `H1::open` (pins, TLS with ALPN
//! h2, phase times) when a request finds its slot empty; requests that come meanwhile wait for
//! it. The `h2` crate frames the streams; each connection's driver is a task of the thread's
//! runtime. Deadlines, retries and error kinds follow the HTTP/1.1 path's rules.
//!
//! A request takes a stream before its send time is read (`Pool::reserve`): when every
//! connection has as many streams open as its server allows, it waits for one to end, and the
//! wait shows as send lag (the generator could not send on time), never as the target's
//! latency. A new connection carries one stream until it has answered (its server's SETTINGS,
//! with its stream limit, are then in), as a browser's first request does. A connection on which a request timed out with nothing answered since it was sent
//! is given up: the next request opens a new one (a drained or black-holed edge).

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

use super::h1::{H1, Head, Origin, Progress, io_kind};
use crate::cache_status::Classifier;
use crate::measure::{ErrorKind, Opened, Outcome, PopName};

/// The flow-control windows granted to the server: a stream's, large enough that an image
/// never waits for a WINDOW_UPDATE, and the connection's, for many such streams at once.
const STREAM_WINDOW: u32 = 4 << 20;
const CONN_WINDOW: u32 = 64 << 20;

/// One origin's HTTP/2 connections on one thread, used in turn.
pub(crate) struct Pool {
    slots: Vec<RefCell<Slot>>,
    next: Cell<usize>,
    /// counts streams that ended; wakes requests waiting for one
    ended: Cell<u64>,
    stream_waiters: RefCell<Vec<Waker>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// every request's headers (no Host: it is `:authority`)
    headers: http::HeaderMap,
}

#[derive(Default)]
struct Slot {
    state: State,
    /// counts the connect attempts that ended; a connection's number
    generation: u64,
    /// how the last connect attempt failed (what the requests that waited for it report)
    failed: Option<ErrorKind>,
    /// requests waiting for the connect in progress
    waiters: Vec<Waker>,
    /// streams taken on this slot (reserved or open)
    streams: usize,
    /// when the current connection last answered (a response head), or was opened
    progress: Option<Instant>,
    /// the current connection has answered: its server's SETTINGS (its stream limit) are in
    said: bool,
}

#[derive(Default)]
enum State {
    #[default]
    Empty,
    Connecting,
    Ready {
        send: h2::client::SendRequest<Bytes>,
        generation: u64,
    },
}

impl Pool {
    /// `n` connections (at least one) for `url`'s origin; `headers` may hold a Host header,
    /// which then becomes the `:authority` (as curl does).
    pub(super) fn new(url: &reqwest::Url, n: usize, mut headers: http::HeaderMap) -> Pool {
        let scheme = match url.scheme() {
            "https" => http::uri::Scheme::HTTPS,
            _ => http::uri::Scheme::HTTP,
        };
        let from_url = || {
            let hp = &url[url::Position::BeforeHost..url::Position::AfterPort];
            http::uri::Authority::try_from(hp).ok()
        };
        let host = headers.remove(http::header::HOST);
        let authority = host
            .and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok())
            .or_else(from_url)
            .unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        Pool {
            slots: (0..n.max(1))
                .map(|_| RefCell::new(Slot::default()))
                .collect(),
            next: Cell::new(0),
            ended: Cell::new(0),
            stream_waiters: RefCell::new(Vec::new()),
            scheme,
            authority,
            headers,
        }
    }

    /// A stream on a connection that has room for one, waiting for one to end when none has:
    /// slots in turn, a slot with no connection yet counting as room.
    pub(crate) async fn reserve(&self) -> Permit<'_> {
        loop {
            let seen = self.ended.get();
            let start = self.next.get();
            self.next.set(start.wrapping_add(1));
            let n = self.slots.len();
            for k in 0..n {
                let i = (start + k) % n;
                let mut s = self.slots[i].borrow_mut();
                // until a connection has answered, its server's stream limit is not known: one
                // stream (h2 would queue the rest inside, after their send time was read)
                let room = match &s.state {
                    State::Ready { send, .. } if s.said => send.current_max_send_streams(),
                    _ => 1,
                };
                if s.streams < room {
                    s.streams += 1;
                    return Permit {
                        pool: self,
                        slot: i,
                    };
                }
            }
            std::future::poll_fn(|cx| {
                if self.ended.get() != seen {
                    return Poll::Ready(());
                }
                let mut w = self.stream_waiters.borrow_mut();
                if !w.iter().any(|x| x.will_wake(cx.waker())) {
                    w.push(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
        }
    }

    /// Notes that connection `generation` of slot `i` answered at `at`.
    fn answered(&self, i: usize, generation: u64, at: Instant) {
        let mut s = self.slots[i].borrow_mut();
        if matches!(s.state, State::Ready { generation: g, .. } if g == generation) {
            s.progress = Some(at);
            s.said = true;
        }
    }

    /// A request sent at `sent` on connection `generation` of slot `i` timed out: if the
    /// connection has not answered since, it is given up.
    fn timed_out(&self, i: usize, generation: u64, sent: Instant) {
        let stalled = {
            let s = self.slots[i].borrow();
            s.progress.is_none_or(|p| p <= sent)
        };
        if stalled {
            self.drop_conn(i, generation);
        }
    }

    /// Forgets connection `generation` of slot `i` (it failed): the next request opens anew.
    fn drop_conn(&self, i: usize, generation: u64) {
        let mut s = self.slots[i].borrow_mut();
        if matches!(s.state, State::Ready { generation: g, .. } if g == generation) {
            s.state = State::Empty;
        }
    }

    fn request(&self, (prefix, path): (&str, &str), head: bool) -> Option<http::Request<()>> {
        let mut pq = String::with_capacity(prefix.len() + path.len());
        pq.push_str(prefix);
        pq.push_str(path);
        let uri = http::Uri::from_parts({
            let mut p = http::uri::Parts::default();
            p.scheme = Some(self.scheme.clone());
            p.authority = Some(self.authority.clone());
            p.path_and_query = Some(http::uri::PathAndQuery::try_from(pq).ok()?);
            p
        })
        .ok()?;
        let mut req = http::Request::new(());
        *req.method_mut() = if head {
            http::Method::HEAD
        } else {
            http::Method::GET
        };
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_2;
        *req.headers_mut() = self.headers.clone();
        Some(req)
    }
}

/// A stream taken on slot `slot` (`Pool::reserve`); given back when dropped.
pub(crate) struct Permit<'a> {
    pool: &'a Pool,
    slot: usize,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.pool.slots[self.slot].borrow_mut().streams -= 1;
        self.pool.ended.set(self.pool.ended.get() + 1);
        let w = std::mem::take(&mut *self.pool.stream_waiters.borrow_mut());
        w.into_iter().for_each(Waker::wake);
    }
}

/// Ends a connect attempt: the slot gets its result, and the requests that waited are woken.
/// Dropped unfinished (the request that connects timed out or was abandoned), it empties the
/// slot with no failure: a waiting request then connects itself.
struct Connecting<'a> {
    slot: &'a RefCell<Slot>,
    done: bool,
}

impl Connecting<'_> {
    fn finish(mut self, state: State, failed: Option<ErrorKind>) -> u64 {
        self.done = true;
        end(self.slot, state, failed)
    }
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        if !self.done {
            end(self.slot, State::Empty, None);
        }
    }
}

fn end(slot: &RefCell<Slot>, state: State, failed: Option<ErrorKind>) -> u64 {
    let mut s = slot.borrow_mut();
    s.generation += 1;
    let g = s.generation;
    if matches!(state, State::Ready { .. }) {
        s.progress = Some(Instant::now());
        s.said = false;
    }
    s.state = match state {
        State::Ready { send, .. } => State::Ready {
            send,
            generation: g,
        },
        other => other,
    };
    s.failed = failed;
    let waiters = std::mem::take(&mut s.waiters);
    drop(s);
    waiters.into_iter().for_each(Waker::wake);
    g
}

/// A connection of slot `i` to send on: the slot's, or a new one (then its `Opened`), or the
/// one another request is opening. A connect that fails fails its waiters with it.
async fn acquire(
    lean: &H1,
    o: &Origin,
    pool: &Pool,
    i: usize,
) -> Result<(h2::client::SendRequest<Bytes>, u64, Option<Opened>), ErrorKind> {
    let cell = &pool.slots[i];
    loop {
        let seen = {
            let mut s = cell.borrow_mut();
            match &s.state {
                State::Ready { send, generation } => return Ok((send.clone(), *generation, None)),
                State::Empty => {
                    s.state = State::Connecting;
                    break;
                }
                State::Connecting => s.generation,
            }
        };
        std::future::poll_fn(|cx| {
            let mut s = cell.borrow_mut();
            if s.generation != seen {
                return Poll::Ready(());
            }
            if !s.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                s.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        let s = cell.borrow();
        if let (State::Empty, Some(e)) = (&s.state, s.failed) {
            return Err(e);
        }
    }
    let attempt = Connecting {
        slot: cell,
        done: false,
    };
    let began = Instant::now();
    let (stream, opened) = match lean.open(o).await {
        Ok(x) => x,
        Err(e) => {
            attempt.finish(State::Empty, Some(e));
            return Err(e);
        }
    };
    let hs = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .handshake::<_, Bytes>(stream);
    let deadline = began.checked_add(lean.connect_timeout());
    let (send, conn) = match lean.deadlines.within(deadline, hs).await {
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            let k = kind(&e);
            attempt.finish(State::Empty, Some(k));
            return Err(k);
        }
        None => {
            attempt.finish(State::Empty, Some(ErrorKind::Timeout));
            return Err(ErrorKind::Timeout);
        }
    };
    // the connection's driver: reads frames, wakes the streams; ends with the connection
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let generation = attempt.finish(
        State::Ready {
            send: send.clone(),
            generation: 0,
        },
        None,
    );
    Ok((send, generation, Some(opened)))
}

/// An h2 error's kind: the I/O error's, a reset or GOAWAY as `reset`, a framing violation as
/// `protocol`.
fn kind(e: &h2::Error) -> ErrorKind {
    if let Some(io) = e.get_io() {
        return io_kind(io);
    }
    match e.reason() {
        Some(
            h2::Reason::PROTOCOL_ERROR
            | h2::Reason::FRAME_SIZE_ERROR
            | h2::Reason::COMPRESSION_ERROR
            | h2::Reason::FLOW_CONTROL_ERROR,
        ) => ErrorKind::Protocol,
        Some(_) => ErrorKind::Reset,
        None => ErrorKind::Protocol,
    }
}

/// Whether a request that failed with `e` before any answer was never processed by the server
/// (a stream it refused, a connection it had closed): safe to send again.
fn unprocessed(e: &h2::Error) -> bool {
    e.reason() == Some(h2::Reason::REFUSED_STREAM) || e.is_go_away() || e.is_io()
}

/// Sends one request over origin `o`'s HTTP/2 connections and reads the whole answer.
pub(super) async fn fetch(
    lean: &H1,
    o: &Origin,
    pool: &Pool,
    url: (&str, &str),
    head: bool,
    classifier: &Classifier,
    (sent, permit): (Instant, Option<Permit<'_>>),
) -> Outcome {
    let p = Progress::default();
    // the connection the last attempt went to (a timeout may give it up)
    let used: Cell<Option<(usize, u64)>> = Cell::new(None);
    let work = async {
        let mut permit = permit;
        for attempt in 0..=lean.retries() {
            if attempt > 0 {
                p.retries.set(attempt);
                p.reused.set(false);
            }
            // the stream reserved before the send time was read; a retry takes another
            let stream = match permit.take() {
                Some(s) => s,
                None => pool.reserve().await,
            };
            let i = stream.slot;
            let (send, generation, how) = acquire(lean, o, pool, i).await?;
            used.set(Some((i, generation)));
            let fresh = how.is_some();
            if fresh {
                p.opened.set(how);
            }
            p.reused.set(!fresh);
            // (held until this attempt ends)
            let _stream = stream;
            let req = pool.request(url, head).ok_or(ErrorKind::Protocol)?;
            // before any answer: a reused connection that is gone gets a retry
            let early = |e: h2::Error| {
                if e.is_go_away() || e.is_io() {
                    pool.drop_conn(i, generation);
                }
                if !fresh && attempt < lean.retries() && unprocessed(&e) {
                    None
                } else {
                    Some(kind(&e))
                }
            };
            // (waits for a free stream when the server's limit is reached)
            let mut send = match send.ready().await {
                Ok(s) => s,
                Err(e) => match early(e) {
                    None => continue,
                    Some(k) => return Err(k),
                },
            };
            let resp = match send.send_request(req, true) {
                Ok((resp, _)) => resp.await,
                Err(e) => Err(e),
            };
            let resp = match resp {
                Ok(r) => r,
                Err(e) => match early(e) {
                    None => continue,
                    Some(k) => return Err(k),
                },
            };
            let at = Instant::now();
            pool.answered(i, generation, at);
            let status = resp.status().as_u16();
            let (class, pop) = classifier.classify(resp.headers());
            let h = Head {
                at,
                status,
                class,
                pop: pop.map(PopName::new),
            };
            p.head.set(Some(h));
            let mut body = resp.into_body();
            let mut bytes = 0u64;
            while let Some(chunk) = body.data().await {
                let c = chunk.map_err(|e| {
                    if e.is_go_away() || e.is_io() {
                        pool.drop_conn(i, generation);
                    }
                    kind(&e)
                })?;
                bytes += c.len() as u64;
                let _ = body.flow_control().release_capacity(c.len());
            }
            return Ok((h, bytes));
        }
        Err(ErrorKind::Reset)
    };
    let work = std::pin::pin!(work);
    let result = lean
        .deadlines
        .within(sent.checked_add(lean.timeout()), work)
        .await;
    match result {
        Some(Ok((h, bytes))) => p.answered(sent, h, bytes),
        Some(Err(k)) => p.failed(sent, k),
        None => {
            if let Some((i, generation)) = used.get() {
                pool.timed_out(i, generation, sent);
            }
            super::failure::at_deadline(p.failed(sent, ErrorKind::Timeout), lean.timeout())
        }
    }
}
