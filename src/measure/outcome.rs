//! What one request produced, as the clients report it: times, status, bytes, cache class, POP.

use std::time::Instant;

use super::ErrorKind;
use crate::cache_status::CacheClass;

/// A POP name kept inline: classification happens per request, so no heap allocation.
#[derive(Clone, Copy, Eq)]
pub struct PopName {
    len: u8,
    buf: [u8; 23],
}

impl PopName {
    /// The name as three words (the bytes past `len` are zero): compared and hashed without a
    /// memcmp call, as POPs are for every request counted.
    #[inline]
    fn words(&self) -> [u64; 3] {
        let mut w = [0u8; 24];
        w[0] = self.len;
        w[1..].copy_from_slice(&self.buf);
        [
            u64::from_ne_bytes(w[..8].try_into().unwrap_or_default()),
            u64::from_ne_bytes(w[8..16].try_into().unwrap_or_default()),
            u64::from_ne_bytes(w[16..].try_into().unwrap_or_default()),
        ]
    }
}

impl PartialEq for PopName {
    #[inline]
    fn eq(&self, o: &PopName) -> bool {
        self.words() == o.words()
    }
}

impl std::hash::Hash for PopName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.words().hash(h);
    }
}

impl PopName {
    /// The first 23 bytes of `s`, every byte but ASCII letters, digits, `.`, `_` and `-` made
    /// `_`: a POP comes from a response header and ends up in file tags, labels and tables.
    pub fn new(s: &str) -> PopName {
        let mut buf = [0u8; 23];
        let s = s.trim().as_bytes();
        let end = s.len().min(23);
        for (d, &b) in buf.iter_mut().zip(&s[..end]) {
            *d = if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                b
            } else {
                b'_'
            };
        }
        PopName {
            len: end as u8,
            buf,
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("?")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pop_names_are_plain() {
        assert_eq!(super::PopName::new("FRA56-P1").as_str(), "FRA56-P1");
        assert_eq!(super::PopName::new(" fra;x=1\n").as_str(), "fra_x_1");
        assert_eq!(super::PopName::new("été").as_str(), "__t__");
        assert_eq!(super::PopName::new(&"A".repeat(40)).as_str().len(), 23);
    }
}

impl std::fmt::Debug for PopName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request's new connection was opened (none when it reused one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Opened {
    /// the address connected to
    pub addr: std::net::SocketAddr,
    /// the name's lookup, when this connection made one (a thread looks a host up once)
    pub dns: Option<std::time::Duration>,
    /// TCP connect
    pub connect: std::time::Duration,
    /// the TLS handshake, for https
    pub tls: Option<std::time::Duration>,
    /// the TLS session was resumed (an abbreviated handshake)
    pub resumed: bool,
    /// the TLS version and cipher suite negotiated (their IANA numbers; 0 without TLS)
    pub tls_version: u16,
    pub tls_suite: u16,
    /// the connection speaks HTTP/2 (else HTTP/1.1)
    pub h2: bool,
}

/// What one request produced. Times are from the actual send (service time).
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub sent: Instant,
    pub headers_at: Option<Instant>,
    pub done: Instant,
    pub status: u16,
    pub bytes: u64,
    pub class: CacheClass,
    pub pop: Option<PopName>,
    pub error: Option<ErrorKind>,
    /// times the request was sent again after a reused connection closed before answering
    /// (`sent` stays the first attempt's send)
    pub retries: u8,
    /// the connection this request opened, if it opened one
    pub opened: Option<Opened>,
    /// it was sent on a kept-alive connection (known to the built-in client only)
    pub reused: bool,
}

impl Outcome {
    /// A request that got no response.
    pub fn failed(sent: Instant, error: ErrorKind) -> Outcome {
        Outcome {
            sent,
            headers_at: None,
            done: Instant::now(),
            status: 0,
            bytes: 0,
            class: CacheClass::Unknown,
            pop: None,
            error: Some(error),
            retries: 0,
            opened: None,
            reused: false,
        }
    }
}
