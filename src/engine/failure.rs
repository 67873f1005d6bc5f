//! How both HTTP stacks (the lean client and reqwest) name a failure and time it: one mapping
//! from their errors onto `measure::ErrorKind`, and one rule for a timeout, which ends at its
//! deadline (the send time plus the timeout) whatever the timer that noticed it.

use std::time::Duration;

use crate::measure::{ErrorKind, Outcome};

thread_local! {
    /// Set when this thread's request failed because the machine ran out of open files.
    static OUT_OF_FILES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a request of this thread failed for lack of open files since the last call: a limit
/// of the machine, not a result (the run stops instead of recording it).
pub(crate) fn take_out_of_files() -> bool {
    OUT_OF_FILES.replace(false)
}

thread_local! {
    /// Why this thread's TLS handshakes failed (distinct reasons, at most 8).
    static TLS_REASONS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A failed TLS handshake: a timeout or a reset as such, anything else (a certificate not
/// trusted, no common protocol, an alert) `tls`, its reason kept for the summary.
pub(crate) fn from_tls(e: &std::io::Error) -> ErrorKind {
    match from_io(e) {
        Some(k @ (ErrorKind::Timeout | ErrorKind::Reset)) => k,
        _ => {
            tls_reason(e.to_string());
            ErrorKind::Tls
        }
    }
}

/// Notes why a handshake failed where the error does not say it.
pub(crate) fn tls_reason(why: String) {
    TLS_REASONS.with_borrow_mut(|r| {
        if r.len() < 8 && !r.contains(&why) {
            r.push(why);
        }
    });
}

/// The reasons this thread's TLS handshakes failed for (and forgets them).
pub(crate) fn take_tls_reasons() -> Vec<String> {
    TLS_REASONS.with_borrow_mut(std::mem::take)
}

/// An I/O error's kind, when its kind says it (`None`: look further, e.g. at its message).
pub(crate) fn from_io(e: &std::io::Error) -> Option<ErrorKind> {
    use std::io::ErrorKind as K;
    if crate::sys::is_out_of_files(e) {
        OUT_OF_FILES.set(true);
        return Some(ErrorKind::Connect);
    }
    Some(match e.kind() {
        K::ConnectionRefused | K::AddrNotAvailable | K::HostUnreachable | K::NetworkUnreachable => {
            ErrorKind::Connect
        }
        K::TimedOut => ErrorKind::Timeout,
        K::InvalidData => ErrorKind::Protocol,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        _ => return None,
    })
}

/// A reqwest error's kind: its source chain (I/O errors by `from_io`, hyper's own), then its
/// text for what only the text says (DNS, TLS).
pub(crate) fn from_reqwest(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = String::new();
    while let Some(s) = src {
        if let Some(k) = s.downcast_ref::<std::io::Error>().and_then(from_io) {
            return k;
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return ErrorKind::Timeout;
            }
            if h.is_incomplete_message() || h.is_canceled() {
                return ErrorKind::Reset;
            }
            if h.is_parse() || h.is_user() {
                return ErrorKind::Protocol;
            }
        }
        text.push_str(&s.to_string().to_ascii_lowercase());
        text.push(' ');
        src = s.source();
    }
    if text.contains("dns error")
        || text.contains("failed to lookup")
        || text.contains("name or service")
    {
        ErrorKind::Dns
    } else if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
        ErrorKind::Tls
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if text.contains("reset") || text.contains("closed") || text.contains("eof") {
        ErrorKind::Reset
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Other
    }
}

/// A request that timed out ends at its deadline at the latest, `sent + timeout`: the latency
/// recorded is the timeout, not the timer's lateness in noticing it (an earlier timeout, of a
/// connect, keeps its own time). Other outcomes are returned as they are.
pub(crate) fn at_deadline(o: Outcome, timeout: Duration) -> Outcome {
    match (o.error, o.sent.checked_add(timeout)) {
        (Some(ErrorKind::Timeout), Some(deadline)) => Outcome {
            done: o.done.min(deadline),
            ..o
        },
        _ => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn one_mapping_of_io_errors_and_timeouts_end_at_their_deadline() {
        use std::io::{Error, ErrorKind as K};
        for (k, want) in [
            (K::ConnectionRefused, Some(ErrorKind::Connect)),
            (K::TimedOut, Some(ErrorKind::Timeout)),
            (K::InvalidData, Some(ErrorKind::Protocol)),
            (K::ConnectionReset, Some(ErrorKind::Reset)),
            (K::UnexpectedEof, Some(ErrorKind::Reset)),
            (K::Other, None),
        ] {
            assert_eq!(from_io(&Error::from(k)), want, "{k:?}");
        }
        let sent = Instant::now();
        let late = Outcome {
            done: sent + Duration::from_millis(1013),
            ..Outcome::failed(sent, ErrorKind::Timeout)
        };
        let o = at_deadline(late, Duration::from_secs(1));
        assert_eq!(o.done - o.sent, Duration::from_secs(1));
        let connect = Outcome {
            done: sent + Duration::from_millis(300),
            ..Outcome::failed(sent, ErrorKind::Timeout)
        };
        assert_eq!(
            at_deadline(connect, Duration::from_secs(1)).done,
            connect.done
        );
        let reset = Outcome::failed(sent, ErrorKind::Reset);
        assert_eq!(at_deadline(reset, Duration::from_secs(1)).done, reset.done);
    }
}
