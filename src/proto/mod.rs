//! Application protocols on reassembled streams: detection by content, then a parser per
//! connection.
//!
//! Contract: [`ConnProto`] takes one connection's [`StreamEvent`]s and decides what it
//! carries from the bytes alone, never from ports. A TLS record header opening the client's
//! stream, or the server's when the client has said nothing (a capture that started
//! mid-connection), makes it TLS, whose decrypted plaintext goes to an [`app::App`]; anything
//! else is cleartext and goes to an [`app::App`] directly, which tells HTTP/1, HTTP/2, FTP and
//! SMTP apart. Until it has decided, it holds the first bytes of each direction (a handful:
//! it decides as soon as one direction has a record header's worth), then replays them. An
//! accepted STARTTLS / AUTH TLS switches a cleartext control connection to TLS; what came
//! before is kept.

pub mod app;
pub mod codec;
pub mod control;
pub mod http;
pub mod tls;

pub use app::{AppProtocol, AppSummary};

use crate::anomaly::AnomalyCounts;
use crate::flow::{Direction, StreamEvent};
use crate::Timestamp;
use app::{App, Next};
use http::{Exchange, HttpLimits};
use std::cell::Cell;
use std::sync::Arc;
use tls::keylog::KeyLog;
use tls::session::{AppData, TlsInfo, TlsSession};

/// Bytes needed to recognise a TLS record header and the handshake type behind it.
const DETECT_BYTES: usize = 6;

/// The first bytes of each direction, held until they tell what the stream carries. Boxed,
/// made at the first stream event and freed when detection ends: a connection is past
/// detection for most of its life (and a TLS session without keys never starts its
/// plaintext's), so its state need not keep room for this.
#[derive(Default)]
struct FirstBytes {
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl FirstBytes {
    fn side_mut(&mut self, dir: Direction) -> &mut Vec<u8> {
        match dir {
            Direction::ClientToServer => &mut self.c2s,
            Direction::ServerToClient => &mut self.s2c,
        }
    }

    /// `(client to server, server to client)`.
    fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.c2s, self.s2c)
    }
}

enum State {
    /// `None` until the first stream event.
    Detecting(Option<Box<FirstBytes>>),
    Tls {
        session: Box<TlsSession>,
        app: App,
    },
    Clear(App),
    /// Both directions ended: what the parsers found, the parsers themselves dropped. A
    /// closed connection stays in the flow table until its 5-tuple is reused or the capture
    /// ends, and its key material, HPACK tables and buffers would stay with it.
    Ended(Box<Found>),
}

/// What a connection's parsers found: its TLS facts (with the session's anomalies merged
/// into the application's), and its application summary. Its parts are boxed as the
/// connection's record keeps them, so that the record takes them as they are: 80 bytes, which
/// with the TLS facts' box fit in the room a TLS session leaves (a summary of 392 bytes did
/// not, and was new memory each time: 20 MB more at 100k connections without keys).
struct Found {
    tls: Option<Box<TlsInfo>>,
    app: AppSummary,
}

impl State {
    fn into_found(self) -> Found {
        match self {
            State::Tls { session, app } => {
                let (info, anomalies) = session.finish();
                let mut app = app.finish();
                app.anomalies.merge(&anomalies);
                Found {
                    tls: Some(Box::new(info)),
                    app,
                }
            }
            State::Clear(app) => Found {
                tls: None,
                app: app.finish(),
            },
            State::Detecting(_) => Found {
                tls: None,
                app: AppSummary::default(),
            },
            State::Ended(found) => *found,
        }
    }
}

/// The protocol layer of one connection.
pub struct ConnProto {
    state: State,
    mid_stream: bool,
    limits: Arc<HttpLimits>,
    /// CONNECT tunnels around this connection (0 for a TCP connection).
    depth: u8,
    /// The directions that ended (bit 0 client to server, bit 1 server to client).
    ended: u8,
    /// The cleartext part of a connection that switched to TLS (STARTTLS). Boxed: rare, and
    /// every connection would pay for it.
    before_tls: Option<Box<AppSummary>>,
}

/// What the protocol layer found, for the connection's record.
#[derive(Debug)]
pub struct ProtoSummary {
    pub protocol: AppProtocol,
    pub tls: Option<Box<TlsInfo>>,
    pub app: AppSummary,
    /// The cleartext part before STARTTLS / AUTH TLS, when there was one.
    pub before_tls: Option<AppSummary>,
    pub anomalies: AnomalyCounts,
}

impl ConnProto {
    /// The protocol layer of a connection whose start the capture saw (`mid_stream` false)
    /// or not.
    pub fn new(mid_stream: bool, limits: Arc<HttpLimits>) -> Self {
        ConnProto {
            state: State::Detecting(None),
            mid_stream,
            limits,
            depth: 0,
            ended: 0,
            before_tls: None,
        }
    }

    /// The connection inside a CONNECT tunnel, `depth` tunnels deep. Beyond the deepest
    /// followed (`u8::MAX`) it is never parsed.
    pub fn nested(limits: Arc<HttpLimits>, depth: u8) -> Self {
        ConnProto {
            depth,
            ..ConnProto::new(false, limits)
        }
    }

    /// Takes one stream event. Decrypted application data also goes to `tap`, for tools
    /// and tests that want the plaintext itself. Once both directions ended, nothing more
    /// can come (a stream ends at most once, [`crate::flow::reassembly`]), so the parsers
    /// are concluded then, unless a growing key log may still decrypt what a session held.
    pub fn event(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        at: Timestamp,
        keylog: &KeyLog,
        tap: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        self.handle(dir, ev, at, keylog, tap);
        if matches!(ev, StreamEvent::Fin | StreamEvent::Rst) {
            self.ended |= match dir {
                Direction::ClientToServer => 1,
                Direction::ServerToClient => 2,
            };
            let late_keys = match &self.state {
                State::Tls { session, .. } => session.awaits_late_keys(keylog),
                _ => false,
            };
            let parsing = matches!(self.state, State::Tls { .. } | State::Clear(_));
            if self.ended == 3 && parsing && !late_keys {
                let state = std::mem::replace(&mut self.state, State::Detecting(None));
                self.state = State::Ended(Box::new(state.into_found()));
            }
        }
    }

    fn handle(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        at: Timestamp,
        keylog: &KeyLog,
        tap: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if let State::Detecting(first) = &mut self.state {
            let first = first.get_or_insert_with(Box::default);
            let buf = first.side_mut(dir);
            let gap = matches!(ev, StreamEvent::Gap(_));
            match ev {
                StreamEvent::Data(d) => buf.extend_from_slice(d),
                // What was held no longer continues; look at what follows instead.
                StreamEvent::Gap(_) => buf.clear(),
                StreamEvent::Fin | StreamEvent::Rst => {}
            }
            let ended = matches!(ev, StreamEvent::Fin | StreamEvent::Rst);
            let decision = decide(&first.c2s, &first.s2c, ended);
            let held = decision.map(|_| std::mem::take(&mut **first).into_parts());
            self.mid_stream |= gap;
            let (Some(tls), Some((c2s, s2c))) = (decision, held) else {
                return;
            };
            if self.depth == u8::MAX {
                return;
            }
            self.state = start(tls, self.mid_stream, &self.limits, self.depth);
            for (d, held) in [
                (Direction::ClientToServer, c2s),
                (Direction::ServerToClient, s2c),
            ] {
                if !held.is_empty() {
                    self.handle(d, StreamEvent::Data(&held), at, keylog, tap);
                }
            }
            if ended {
                self.handle(dir, ev, at, keylog, tap);
            }
            return;
        }
        match &mut self.state {
            State::Tls { session, app } => {
                // Plaintext goes to the application layer and to the tap; the tap shows this
                // TLS session's plaintext only, not that of a tunnel it carries.
                let clock = &Cell::new(at);
                let mut to_app = plaintext_to(app, keylog, clock);
                let mut feed = |d: Direction, data: AppData<'_>| {
                    to_app(d, data);
                    tap(d, data);
                };
                // Only a growing key log (live capture) can bring keys after the handshake.
                if keylog.hold_for_keys() > 0 && session.keys_now_available(keylog) {
                    session.keys_arrived(keylog, clock, &mut feed);
                }
                match ev {
                    StreamEvent::Data(d) => session.data(dir, d, keylog, clock, &mut feed),
                    StreamEvent::Gap(_) => session.gap(dir, keylog, clock, &mut feed),
                    StreamEvent::Fin | StreamEvent::Rst => {
                        session.end(dir, keylog, clock, &mut feed);
                        // It borrows `app`, which ends its direction after it.
                        drop(to_app);
                        app.end(dir, at, keylog);
                    }
                }
            }
            State::Clear(app) => {
                let switch = match ev {
                    StreamEvent::Data(d) => match app.data(dir, d, at, keylog, tap) {
                        Next::StartTls(n) => Some(d.get(n..).unwrap_or(&[])),
                        Next::Continue => None,
                    },
                    StreamEvent::Gap(n) => {
                        app.gap(dir, Some(n), at, keylog);
                        None
                    }
                    StreamEvent::Fin | StreamEvent::Rst => {
                        app.end(dir, at, keylog);
                        None
                    }
                };
                if let Some(rest) = switch {
                    let tls = start(true, self.mid_stream, &self.limits, self.depth);
                    if let State::Clear(app) = std::mem::replace(&mut self.state, tls) {
                        self.before_tls = Some(Box::new(app.finish()));
                    }
                    if !rest.is_empty() {
                        self.handle(dir, StreamEvent::Data(rest), at, keylog, tap);
                    }
                }
            }
            State::Detecting(_) | State::Ended(_) => {}
        }
    }

    /// The key log grew: a TLS session waiting for its keys decrypts what it held.
    pub fn keys_arrived(&mut self, keylog: &KeyLog, at: Timestamp) {
        if let State::Tls { session, app } = &mut self.state {
            let clock = &Cell::new(at);
            session.keys_arrived(keylog, clock, &mut plaintext_to(app, keylog, clock));
        }
    }

    /// The connection so far: its TLS facts and HTTP exchanges (for a live capture, which
    /// reports a 421 before the connection ends).
    pub fn peek(&self) -> (Option<&TlsInfo>, &[Exchange]) {
        match &self.state {
            State::Tls { session, app } => (Some(session.info()), app.exchanges()),
            State::Clear(app) => (None, app.exchanges()),
            State::Ended(found) => (found.tls.as_deref(), &found.app.exchanges),
            State::Detecting(_) => (None, &[]),
        }
    }

    /// The connection ends here in the capture: a TLS record it was inside of passes on
    /// what it holds, as a streamed one would have ([`TlsSession::pass_on_cut`]), and so
    /// does a TLS session in a tunnel it carries.
    pub fn cut(&mut self, at: Timestamp, keylog: &KeyLog) {
        match &mut self.state {
            State::Tls { session, app } => {
                let clock = &Cell::new(at);
                let mut to_app = plaintext_to(app, keylog, clock);
                for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                    session.pass_on_cut(dir, keylog, clock, &mut to_app);
                }
                drop(to_app);
                app.cut(at, keylog);
            }
            State::Clear(app) => app.cut(at, keylog),
            State::Detecting(_) | State::Ended(_) => {}
        }
    }

    pub fn finish(self, carried_payload: bool) -> ProtoSummary {
        let Found { tls, app } = self.state.into_found();
        let protocol = app
            .protocol
            .or(self.before_tls.as_ref().and_then(|b| b.protocol))
            .unwrap_or(if carried_payload {
                AppProtocol::Unknown
            } else {
                AppProtocol::None
            });
        let mut anomalies = app.anomalies.clone();
        if let Some(b) = &self.before_tls {
            anomalies.merge(&b.anomalies);
        }
        ProtoSummary {
            protocol,
            tls,
            app,
            before_tls: self.before_tls.map(|b| *b),
            anomalies,
        }
    }
}

/// Where a TLS session's plaintext goes: the application layer, dated by `clock`, the
/// capture time of the plaintext being handed on: the event's, or when a record began (the
/// session sets it). Made for each event, not kept: every open connection would pay for it.
fn plaintext_to<'a>(
    app: &'a mut App,
    keylog: &'a KeyLog,
    clock: &'a std::cell::Cell<Timestamp>,
) -> impl FnMut(Direction, AppData<'_>) + 'a {
    move |d, data| match data {
        // STARTTLS inside TLS is meaningless; nothing to switch.
        AppData::Data(b) => {
            let _ = app.data(d, b, clock.get(), keylog, &mut |_, _| {});
        }
        AppData::Lost => app.gap(d, None, clock.get(), keylog),
    }
}

/// Decides as soon as either direction holds enough bytes (or a direction ended with fewer):
/// `Some(true)` for TLS, `Some(false)` for cleartext, `None` to keep waiting. Both buffers
/// therefore stay below `DETECT_BYTES` plus one delivered piece.
fn decide(c2s: &[u8], s2c: &[u8], ended: bool) -> Option<bool> {
    let looks_tls = |b: &[u8]| tls::record::is_record_header(b);
    if c2s.len() >= DETECT_BYTES {
        return Some(looks_tls(c2s));
    }
    if s2c.len() >= DETECT_BYTES {
        // The server spoke first, or the client has sent only a few bytes so far: decide on
        // the server's bytes, unless the client's contradict a TLS record header.
        let client_ok = c2s.is_empty() || could_start_tls_record(c2s);
        return Some(client_ok && looks_tls(s2c));
    }
    if ended && !(c2s.is_empty() && s2c.is_empty()) {
        // A few bytes and the end: cleartext (e.g. "QUIT\r\n" or a 5-byte reply).
        return Some(false);
    }
    None
}

fn start(tls: bool, mid_stream: bool, limits: &Arc<HttpLimits>, depth: u8) -> State {
    let app = App::new(mid_stream, Arc::clone(limits), depth);
    if tls {
        State::Tls {
            session: Box::new(TlsSession::new(limits.tls)),
            app,
        }
    } else {
        State::Clear(app)
    }
}

/// Whether fewer than five bytes can be the start of a TLS record header.
fn could_start_tls_record(b: &[u8]) -> bool {
    let t = b.first().is_some_and(|t| (20..=24).contains(t));
    let major = b.get(1).is_none_or(|&m| m == 3);
    let minor = b.get(2).is_none_or(|&m| m <= 4);
    t && major && minor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut ConnProto, dir: Direction, data: &[u8]) {
        p.event(
            dir,
            StreamEvent::Data(data),
            Timestamp::default(),
            &KeyLog::default(),
            &mut |_, _| {},
        );
    }

    fn conn() -> ConnProto {
        ConnProto::new(false, crate::Limits::default().http())
    }

    fn held(p: &ConnProto) -> Option<usize> {
        match &p.state {
            State::Detecting(first) => {
                Some(first.as_ref().map_or(0, |f| f.c2s.len() + f.s2c.len()))
            }
            _ => None,
        }
    }

    /// A client that sends a few bytes and a server that then streams must not make the
    /// detector hold the server's stream.
    #[test]
    fn short_client_prefix_and_a_streaming_server_decide_at_once() {
        let mut p = conn();
        feed(&mut p, Direction::ClientToServer, b"GE");
        for _ in 0..1000 {
            feed(&mut p, Direction::ServerToClient, &[b'x'; 1000]);
        }
        assert_eq!(held(&p), None, "still detecting");
        assert!(matches!(p.state, State::Clear(_)));
        // A split TLS header from the client and TLS from the server: TLS.
        let mut p = conn();
        feed(&mut p, Direction::ClientToServer, &[22, 3]);
        feed(&mut p, Direction::ServerToClient, &[22, 3, 3, 0, 2, 2, 0]);
        assert!(matches!(p.state, State::Tls { .. }));
    }

    /// A connection that ended both ways keeps what its parsers found, not the parsers.
    #[test]
    fn ending_both_ways_concludes_the_parsers() {
        let mut p = conn();
        let end = |p: &mut ConnProto, dir| {
            let keylog = KeyLog::default();
            p.event(
                dir,
                StreamEvent::Fin,
                Timestamp::default(),
                &keylog,
                &mut |_, _| {},
            );
        };
        feed(
            &mut p,
            Direction::ClientToServer,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        feed(
            &mut p,
            Direction::ServerToClient,
            b"HTTP/1.1 421 No\r\nContent-Length: 0\r\n\r\n",
        );
        end(&mut p, Direction::ServerToClient);
        assert!(matches!(p.state, State::Clear(_)));
        end(&mut p, Direction::ServerToClient);
        assert!(matches!(p.state, State::Clear(_)), "one direction twice");
        end(&mut p, Direction::ClientToServer);
        assert!(matches!(p.state, State::Ended(_)));
        assert_eq!(p.peek().1.len(), 1);
        p.cut(Timestamp::default(), &KeyLog::default());
        let found = p.finish(true);
        assert_eq!(found.protocol, AppProtocol::Http1);
        assert_eq!(found.app.exchanges[0].status, Some(421));
    }

    #[test]
    fn detection_needs_six_bytes() {
        let mut p = conn();
        feed(&mut p, Direction::ClientToServer, &[22, 3, 1]);
        assert_eq!(held(&p), Some(3));
        feed(&mut p, Direction::ClientToServer, &[0, 5, 1]);
        assert!(matches!(p.state, State::Tls { .. }));
    }
}
