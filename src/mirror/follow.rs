//! Live inputs: `tail -F` of a log file (survives rotation by rename and by truncation), a
//! syslog UDP socket (RFC 3164/5424 prefixes removed), stdin. Each delivers whole lines to a
//! callback; none blocks on the consumer.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Follows `path` like `tail -F` until `stop` is set. `from_start` reads what is already there.
/// Rotation: when the path names a new file (rename + recreate), the old file is read to its end,
/// then the new one from its start; when the file shrinks (copytruncate), reading restarts at 0.
/// Rotations and truncations a follower has seen (tests and the status endpoint read them).
#[derive(Debug, Default)]
pub struct FollowEvents {
    pub rotations: std::sync::atomic::AtomicU64,
    pub truncations: std::sync::atomic::AtomicU64,
}

pub fn follow(
    path: &Path,
    from_start: bool,
    stop: Arc<AtomicBool>,
    poll: Duration,
    events: &FollowEvents,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut file = open_wait(path, &stop)?;
    let Some(f) = file.as_mut() else {
        return Ok(());
    };
    if !from_start {
        f.seek(SeekFrom::End(0))?;
    }
    let mut ino = f.metadata()?.ino();
    let mut pos = f.stream_position()?;
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let Some(f) = file.as_mut() else {
            return Ok(());
        };
        // read everything available
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            emit(&mut carry, &buf[..n], &mut on_line);
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // rotation?
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != ino => {
                // renamed away and recreated: the old handle is drained (above); switch
                if !carry.is_empty() {
                    on_line(&String::from_utf8_lossy(&std::mem::take(&mut carry)));
                }
                if let Ok(nf) = File::open(path) {
                    ino = nf.metadata()?.ino();
                    pos = 0;
                    file = Some(nf);
                    events.rotations.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            Ok(m) if m.len() < pos => {
                // truncated in place (copytruncate): start over from the top
                carry.clear();
                f.seek(SeekFrom::Start(0))?;
                pos = 0;
                events.truncations.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            _ => {}
        }
        std::thread::sleep(poll);
    }
}

fn open_wait(path: &Path, stop: &AtomicBool) -> std::io::Result<Option<File>> {
    loop {
        match File::open(path) {
            Ok(f) => return Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

fn emit(carry: &mut Vec<u8>, data: &[u8], on_line: &mut impl FnMut(&str)) {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        if carry.is_empty() {
            on_line(&String::from_utf8_lossy(&data[start..nl]));
        } else {
            carry.extend_from_slice(&data[start..nl]);
            on_line(&String::from_utf8_lossy(carry));
            carry.clear();
        }
        start = nl + 1;
    }
    carry.extend_from_slice(&data[start..]);
}

/// The rotated siblings of a log, oldest first: `access.log.3.gz`, `access.log.2.gz`,
/// `access.log.1` (logrotate's numbering; .gz and .zst are read transparently).
pub fn rotated_files(path: &Path) -> Vec<std::path::PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut found: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.to_string();
                    let rest = n.strip_prefix(name)?.strip_prefix('.')?;
                    let num = rest
                        .strip_suffix(".gz")
                        .or_else(|| rest.strip_suffix(".zst"))
                        .unwrap_or(rest);
                    Some((num.parse::<u64>().ok()?, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Reads every rotated sibling of `path` once, oldest first (`mirror --rotated`).
pub(crate) fn read_rotated(
    path: &Path,
    stop: Arc<AtomicBool>,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    for f in rotated_files(path) {
        let r = crate::logs::input::open(&crate::logs::input::Source::File(f))
            .map_err(std::io::Error::other)?;
        for line in std::io::BufReader::new(r).lines() {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            on_line(&line?);
        }
    }
    Ok(())
}

/// Removes a syslog header: RFC 5424 (`<190>1 TS HOST APP PROCID MSGID SD MSG`) or RFC 3164
/// (`<190>Nov 26 12:00:00 host tag: MSG`). Lines without `<PRI>` pass through.
pub fn strip_syslog(line: &str) -> &str {
    let Some(rest) = line.strip_prefix('<') else {
        return line;
    };
    let Some(end) = rest.find('>') else {
        return line;
    };
    if !rest[..end].bytes().all(|c| c.is_ascii_digit()) {
        return line;
    }
    let rest = &rest[end + 1..];
    if let Some(r) = rest.strip_prefix("1 ") {
        // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then STRUCTURED-DATA ("-" or [..]...)
        let mut s = r;
        for _ in 0..5 {
            s = s.split_once(' ').map(|(_, t)| t).unwrap_or("");
        }
        if let Some(t) = s.strip_prefix("- ") {
            return t;
        }
        if s.starts_with('[') {
            let mut depth = 0;
            for (i, c) in s.char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 && !s[i + 1..].starts_with('[') {
                            return s[i + 1..].trim_start();
                        }
                    }
                    _ => {}
                }
            }
        }
        return s;
    }
    // RFC 3164: the message starts after "tag: " (or "tag[pid]: ")
    match rest.find(": ") {
        Some(i) => &rest[i + 2..],
        None => rest,
    }
}

/// Reads syslog datagrams (one line each) until `stop`.
pub(crate) fn syslog_udp(
    sock: std::net::UdpSocket,
    stop: Arc<AtomicBool>,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                for l in text.lines() {
                    on_line(strip_syslog(l));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads stdin lines until EOF or `stop`.
pub(crate) fn stdin_lines(
    stop: Arc<AtomicBool>,
    mut on_line: impl FnMut(&str),
) -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        if lock.read_line(&mut line)? == 0 {
            break;
        }
        on_line(line.trim_end_matches(['\n', '\r']));
    }
    Ok(())
}

pub fn parse_syslog_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let a = s.strip_prefix("udp://").unwrap_or(s);
    a.parse()
        .map_err(|_| format!("--syslog {s:?}: expected udp://HOST:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_prefixes() {
        let l = "1.2.3.4 - - [12/Mar/2024:10:00:01 +0000] \"GET /a HTTP/1.1\" 200 1";
        assert_eq!(
            strip_syslog(&format!("<190>Nov 26 12:00:00 web1 nginx: {l}")),
            l
        );
        assert_eq!(
            strip_syslog(&format!("<190>1 2026-11-26T12:00:00Z web1 nginx - - - {l}")),
            l
        );
        assert_eq!(
            strip_syslog(&format!(
                "<190>1 2026-11-26T12:00:00Z web1 nginx 12 ID7 [x@1 a=\"b\"][y@2] {l}"
            )),
            l
        );
        assert_eq!(strip_syslog(l), l);
    }

    #[test]
    fn lines_split_across_reads() {
        let mut carry = Vec::new();
        let mut got = Vec::new();
        emit(&mut carry, b"ab\ncd", &mut |l| got.push(l.to_string()));
        emit(&mut carry, b"ef\n\ngh", &mut |l| got.push(l.to_string()));
        assert_eq!(got, ["ab", "cdef", ""]);
        assert_eq!(carry, b"gh");
    }
}
