//! The application protocol on a byte stream pair: cleartext TCP, or TLS once decrypted.
//!
//! Contract: [`App`] recognises what the connection carries from its first bytes, never from
//! ports: the HTTP/2 client preface, an HTTP/1 request or status line, an FTP/SMTP command
//! or 3-digit reply, or (when the capture missed the start) HTTP/2 frames. It holds the
//! first bytes of each direction until one of them decides (at most a first line's worth,
//! [`MAX_DETECT`]), then replays them to the chosen parser.

use super::control::{Control, ControlInfo, Dialect};
use super::http::{self, http1, http2, Exchange, Http2Info, HttpConn, HttpLimits, HttpVersion};
use super::tls::keylog::KeyLog;
use super::tls::session::AppData;
use super::{ConnProto, FirstBytes, ProtoSummary};
use crate::anomaly::AnomalyCounts;
use crate::flow::Direction;
use crate::Timestamp;
use serde::Serialize;
use std::sync::Arc;

/// Bytes held per direction while detecting; a first line longer than this is not HTTP/1,
/// FTP or SMTP.
const MAX_DETECT: usize = 4096;
/// CONNECT tunnels inside tunnels followed; deeper ones are ignored.
const MAX_TUNNEL_DEPTH: u8 = 2;

/// What a connection carries, as far as misdirect can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppProtocol {
    Http1,
    Http2,
    Ftp,
    Smtp,
    /// An FTP or SMTP control connection whose dialect nothing in it told.
    FtpOrSmtp,
    /// Bytes not recognised, or encrypted without keys.
    Unknown,
    /// The connection carried no payload.
    None,
}

enum State {
    /// `None` until the first bytes.
    Detecting(Option<Box<FirstBytes>>),
    Http(Box<HttpConn>),
    Control(Box<Control>),
    /// After a successful CONNECT: what came before, and the tunnelled connection.
    Tunnel {
        before: Box<AppSummary>,
        inner: Box<ConnProto>,
    },
    Unknown,
}

/// The application layer of one connection (or of one TLS session's plaintext).
pub struct App {
    state: State,
    mid_stream: bool,
    limits: Arc<HttpLimits>,
    saw_bytes: bool,
    /// CONNECT tunnels around this stream.
    depth: u8,
}

/// What the application layer found.
#[derive(Debug, Default)]
pub struct AppSummary {
    pub protocol: Option<AppProtocol>,
    pub exchanges: Vec<Exchange>,
    pub exchanges_dropped: u64,
    /// Boxed as the connection's record keeps them: a connection that ended both ways keeps
    /// its summary while it stays in the flow table ([`super::ConnProto::event`]), and a
    /// summary that fits where its parsers were is made without new memory.
    pub http2: Option<Box<Http2Info>>,
    pub control: Option<Box<ControlInfo>>,
    /// What a CONNECT tunnel carried.
    pub tunnel: Option<Box<ProtoSummary>>,
    pub anomalies: AnomalyCounts,
}

/// Where decrypted plaintext is shown besides being parsed.
pub type Tap<'t> = &'t mut dyn FnMut(Direction, AppData<'_>);

/// What [`App::data`] asks of its caller.
pub enum Next {
    Continue,
    /// The connection switched to TLS (STARTTLS) after this many bytes of the piece.
    StartTls(usize),
}

impl App {
    pub fn new(mid_stream: bool, limits: Arc<HttpLimits>, depth: u8) -> Self {
        App {
            state: State::Detecting(None),
            mid_stream,
            limits,
            saw_bytes: false,
            depth,
        }
    }

    /// Takes bytes of one direction. Plaintext decrypted inside a CONNECT tunnel goes to
    /// `tap` as well (see [`ConnProto::event`]).
    pub fn data(
        &mut self,
        dir: Direction,
        data: &[u8],
        at: Timestamp,
        keylog: &KeyLog,
        tap: Tap<'_>,
    ) -> Next {
        self.saw_bytes |= !data.is_empty();
        if let State::Detecting(first) = &mut self.state {
            let first = first.get_or_insert_with(Box::default);
            let buf = first.side_mut(dir);
            let room = MAX_DETECT.saturating_sub(buf.len());
            let (fits, over) = data.split_at(room.min(data.len()));
            buf.extend_from_slice(fits);
            // `decide` always decides once a buffer is full, so `over` is never dropped: it
            // is fed after the replay below. (It was dropped: a first piece over MAX_DETECT
            // lost its tail, e.g. the rest of a 16 KiB TLS record.)
            let Some(next) = decide(&first.c2s, &first.s2c, self.mid_stream, &self.limits) else {
                return Next::Continue;
            };
            let (c2s, s2c) = std::mem::take(&mut **first).into_parts();
            self.state = next;
            // Replay in the order the bytes could have been sent: the side that decided
            // first is not known, so the client's first (requests precede responses), but
            // server-first protocols (FTP/SMTP greetings) the server's.
            let server_first = matches!(self.state, State::Control(_));
            let order = if server_first {
                [
                    (Direction::ServerToClient, s2c),
                    (Direction::ClientToServer, c2s),
                ]
            } else {
                [
                    (Direction::ClientToServer, c2s),
                    (Direction::ServerToClient, s2c),
                ]
            };
            for (d, held) in order {
                if !held.is_empty() {
                    if let Next::StartTls(n) = self.feed(d, &held, at, keylog, tap) {
                        return Next::StartTls(n);
                    }
                }
            }
            if over.is_empty() {
                return Next::Continue;
            }
            return match self.feed(dir, over, at, keylog, tap) {
                Next::StartTls(n) => Next::StartTls(fits.len() + n),
                Next::Continue => Next::Continue,
            };
        }
        self.feed(dir, data, at, keylog, tap)
    }

    fn feed(
        &mut self,
        dir: Direction,
        data: &[u8],
        at: Timestamp,
        keylog: &KeyLog,
        tap: Tap<'_>,
    ) -> Next {
        match &mut self.state {
            State::Http(h) => {
                if let Some(hand) = h.data(dir, data, at) {
                    self.tunnel(hand, at, keylog, tap);
                }
            }
            State::Tunnel { inner, .. } => {
                inner.event(dir, crate::flow::StreamEvent::Data(data), at, keylog, tap)
            }
            State::Control(c) => {
                if let Some(n) = c.data(dir, data, at) {
                    return Next::StartTls(n);
                }
            }
            State::Detecting(_) | State::Unknown => {}
        }
        Next::Continue
    }

    /// A CONNECT tunnel started: the bytes that follow are another connection's.
    fn tunnel(&mut self, hand: http1::Handover, at: Timestamp, keylog: &KeyLog, tap: Tap<'_>) {
        let State::Http(h) = std::mem::replace(&mut self.state, State::Unknown) else {
            return;
        };
        let before = Box::new(finish_http(*h));
        if self.depth >= MAX_TUNNEL_DEPTH {
            self.state = State::Tunnel {
                before,
                inner: Box::new(ConnProto::nested(self.limits.clone(), u8::MAX)),
            };
            return;
        }
        let mut inner = Box::new(ConnProto::nested(self.limits.clone(), self.depth + 1));
        for (d, bytes) in [
            (Direction::ClientToServer, &hand.client_bytes),
            (Direction::ServerToClient, &hand.server_bytes),
        ] {
            if !bytes.is_empty() {
                let ev = crate::flow::StreamEvent::Data(bytes);
                inner.event(d, ev, at, keylog, tap);
            }
        }
        self.state = State::Tunnel { before, inner };
    }

    /// `len` bytes were lost (`None`: the rest of the direction is lost, e.g. undecryptable).
    pub fn gap(&mut self, dir: Direction, len: Option<u64>, at: Timestamp, keylog: &KeyLog) {
        let len = len.unwrap_or(u64::MAX);
        match &mut self.state {
            State::Detecting(first) => {
                // What was held no longer continues; decide on what follows instead.
                if let Some(first) = first {
                    first.side_mut(dir).clear();
                }
                self.mid_stream = true;
            }
            State::Http(h) => h.gap(dir, len, at),
            State::Control(c) => c.gap(dir),
            State::Tunnel { inner, .. } => inner.event(
                dir,
                crate::flow::StreamEvent::Gap(len),
                at,
                keylog,
                &mut |_, _| {},
            ),
            State::Unknown => {}
        }
    }

    pub fn end(&mut self, dir: Direction, at: Timestamp, keylog: &KeyLog) {
        match &mut self.state {
            State::Http(h) => h.end(dir),
            State::Tunnel { inner, .. } => inner.event(
                dir,
                crate::flow::StreamEvent::Fin,
                at,
                keylog,
                &mut |_, _| {},
            ),
            _ => {}
        }
    }

    /// The connection ends here in the capture: a TLS session in a tunnel passes on what
    /// it holds, as the outer one does ([`ConnProto::cut`]).
    pub fn cut(&mut self, at: Timestamp, keylog: &KeyLog) {
        if let State::Tunnel { inner, .. } = &mut self.state {
            inner.cut(at, keylog);
        }
    }

    /// The HTTP exchanges so far (not those inside a tunnel), for watching a live capture.
    pub fn exchanges(&self) -> &[Exchange] {
        match &self.state {
            State::Http(h) => &h.log.exchanges,
            _ => &[],
        }
    }

    pub fn finish(self) -> AppSummary {
        match self.state {
            State::Http(h) => finish_http(*h),
            State::Tunnel { before, inner } => {
                let mut s = *before;
                let carried = true;
                s.tunnel = Some(Box::new(inner.finish(carried)));
                s
            }
            State::Control(c) => {
                let (info, anomalies) = c.finish();
                AppSummary {
                    protocol: Some(match info.dialect {
                        Some(Dialect::Ftp) => AppProtocol::Ftp,
                        Some(Dialect::Smtp) => AppProtocol::Smtp,
                        None => AppProtocol::FtpOrSmtp,
                    }),
                    control: Some(Box::new(info)),
                    anomalies,
                    ..AppSummary::default()
                }
            }
            State::Detecting(_) | State::Unknown => AppSummary {
                protocol: self.saw_bytes.then_some(AppProtocol::Unknown),
                ..AppSummary::default()
            },
        }
    }
}

fn finish_http(h: HttpConn) -> AppSummary {
    let version = h.version();
    let (mut log, http2) = h.finish();
    // The list goes into the report and stays to the end; its spare room would too.
    log.exchanges.shrink_to_fit();
    AppSummary {
        protocol: Some(match version {
            HttpVersion::Http2 => AppProtocol::Http2,
            _ => AppProtocol::Http1,
        }),
        exchanges: log.exchanges,
        exchanges_dropped: log.dropped,
        http2: http2.map(Box::new),
        control: None,
        tunnel: None,
        anomalies: log.anomalies,
    }
}

/// Decides from the first bytes of each direction; `None` to wait for more, but never once a
/// direction holds [`MAX_DETECT`] bytes: then that direction decides alone (as the other
/// direction's few bytes said nothing yet), so that nothing is held beyond the limit, and so
/// nothing is dropped. (Waiting on the other direction dropped the full one's bytes.)
fn decide(c2s: &[u8], s2c: &[u8], mid_stream: bool, limits: &Arc<HttpLimits>) -> Option<State> {
    let d = decide_both(c2s, s2c, mid_stream, limits);
    if d.is_some() {
        return d;
    }
    let alone = if s2c.len() >= MAX_DETECT {
        decide_both(&[], s2c, mid_stream, limits)
    } else if c2s.len() >= MAX_DETECT {
        decide_both(c2s, &[], mid_stream, limits)
    } else {
        return None;
    };
    Some(alone.unwrap_or(State::Unknown))
}

fn decide_both(
    c2s: &[u8],
    s2c: &[u8],
    mid_stream: bool,
    limits: &Arc<HttpLimits>,
) -> Option<State> {
    let http = |start| {
        Some(State::Http(Box::new(HttpConn::new(
            start,
            mid_stream,
            Arc::clone(limits),
        ))))
    };
    let control = || Some(State::Control(Box::new(Control::new(limits.max_exchanges))));
    if !c2s.is_empty() {
        let n = c2s.len().min(http2::frame::PREFACE.len());
        if c2s.get(..n) == http2::frame::PREFACE.get(..n) {
            return if n == http2::frame::PREFACE.len() {
                http(http::Start::Http2Preface)
            } else {
                None
            };
        }
        match (http1::detect(c2s, true), super::control::detect(c2s, true)) {
            (Some(true), _) => return http(http::Start::Http1),
            (_, Some(true)) => return control(),
            (Some(false), Some(false)) => {}
            _ => return None,
        }
        if mid_stream {
            match http2::looks_like_frames(c2s) {
                Some(true) => return http(http::Start::Http2Frames),
                None if c2s.len() < MAX_DETECT => return None,
                _ => {}
            }
        }
        // The client's bytes say nothing known; the server's may (a capture that started
        // inside a request body, say).
        if s2c.is_empty() && c2s.len() < MAX_DETECT {
            return None;
        }
    }
    if !s2c.is_empty() {
        match (
            http1::detect(s2c, false),
            super::control::detect(s2c, false),
        ) {
            (Some(true), _) => return http(http::Start::Http1),
            (_, Some(true)) => return control(),
            (Some(false), Some(false)) => {}
            _ => return None,
        }
        match http2::looks_like_frames(s2c) {
            Some(true) => return http(http::Start::Http2Frames),
            None if s2c.len() < MAX_DETECT => return None,
            _ => {}
        }
    }
    if c2s.len() >= MAX_DETECT || s2c.len() >= MAX_DETECT || (!c2s.is_empty() && !s2c.is_empty()) {
        return Some(State::Unknown);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pieces: &[(Direction, &[u8])]) -> AppSummary {
        let mut app = App::new(false, crate::Limits::default().http(), 0);
        for (i, (d, p)) in pieces.iter().enumerate() {
            app.data(
                *d,
                p,
                Timestamp(i as i64),
                &KeyLog::default(),
                &mut |_, _| {},
            );
        }
        app.finish()
    }

    /// A first piece longer than what detection holds is parsed whole, not cut at
    /// `MAX_DETECT` (a first TLS record or segment can hold 16 KiB and more).
    #[test]
    fn a_first_piece_over_the_detection_buffer_is_parsed_whole() {
        let mut c = b"POST /a HTTP/1.1\r\nContent-Length: 5000\r\n\r\n".to_vec();
        c.extend([b'x'; 5000]);
        c.extend(b"GET /b HTTP/1.1\r\n\r\n");
        let s = run(&[(Direction::ClientToServer, &c)]);
        let paths: Vec<_> = s.exchanges.iter().map(|e| e.path.as_deref()).collect();
        assert_eq!(paths, vec![Some("/a"), Some("/b")]);
    }

    /// A client that sent a few bytes and a server that streams: the server's bytes beyond
    /// the detection buffer are not dropped while the client's stay undecided.
    #[test]
    fn a_full_detection_buffer_decides_and_loses_nothing() {
        let mut s2c = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec();
        s2c.extend([b'x'; 5000]);
        s2c.extend(b"HTTP/1.1 204 No Content\r\n\r\n");
        let (a, b) = s2c.split_at(3000);
        let s = run(&[
            (Direction::ClientToServer, b"GE"),
            (Direction::ServerToClient, a),
            (Direction::ServerToClient, b),
        ]);
        let statuses: Vec<_> = s.exchanges.iter().map(|e| e.status).collect();
        assert_eq!(statuses, vec![Some(200), Some(204)]);
    }
}
