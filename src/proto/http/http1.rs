//! HTTP/1.0 and HTTP/1.1 on one connection (RFC 9112): heads, body framing, pairing.
//!
//! Contract: [`Http1::data`] takes each direction's bytes in order. Message heads are parsed
//! with httparse; bodies are framed here (Content-Length, chunked with trailers,
//! close-delimited; none for HEAD, 1xx, 204 and 304) and skipped, never buffered. Responses
//! pair with requests in order (pipelining included); 1xx are interim. After a `101` to an
//! `Upgrade: h2c` request the connection is handed to HTTP/2, after a successful CONNECT to
//! whatever the tunnel carries ([`Handover`]); after any other `101` (WebSocket) both
//! directions are ignored. Bytes the client
//! sends after an Upgrade or CONNECT request are held until the response says what they are,
//! so they are never parsed as HTTP/1 by mistake.
//!
//! Recovery: a gap inside a body of known length is skipped. A gap anywhere else, or bytes
//! that are not a message head, make the direction resynchronise on the next line that looks
//! like a request line (client) or a status line (server). Pairing after such a loss cannot
//! be known: responses that follow are paired at the end from the last request backwards
//! ([`Pairing::Inferred`]).

use super::{Exchange, ExchangeLog, HttpVersion, Pairing};
use crate::anomaly::Anomaly;
use crate::flow::Direction;
use crate::Timestamp;
use std::collections::VecDeque;

/// Headers parsed per message head; more is an invalid head here (real heads have < 100).
const MAX_HEADERS: usize = 128;
/// Client bytes held after an Upgrade or CONNECT request until the response comes.
const MAX_HELD: usize = 64 * 1024;

/// What the connection switched to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchTo {
    /// HTTP/2 after an h2c Upgrade.
    H2c,
    /// A CONNECT tunnel: the bytes are another connection's.
    Tunnel,
}

/// The connection stopped being HTTP/1: what the next parser starts from.
pub struct Handover {
    pub to: SwitchTo,
    /// The exchange of the request that switched (for h2c, HTTP/2 stream 1).
    pub exchange: Option<usize>,
    /// Client bytes after the request (the HTTP/2 preface onwards).
    pub client_bytes: Vec<u8>,
    /// Server bytes after the `101` head.
    pub server_bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MethodKind {
    Head,
    Connect,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Request {
        exchange: Option<usize>,
        method: MethodKind,
        upgrade_h2c: bool,
    },
    /// Requests or responses were lost here: pairing past this point is unknown.
    Lost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (`line` buffer).
    Size,
    Data(u64),
    /// The CRLF after a chunk's data: bytes still to skip.
    DataEnd(u8),
    /// Trailer lines until an empty one.
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a message head.
    Head,
    Length(u64),
    Chunked(Chunk),
    /// Body until the connection closes (responses only).
    UntilClose,
    /// Client bytes held after an Upgrade/CONNECT request.
    Held,
    /// Lost sync: looking for the next start line.
    Resync,
    /// A tunnel or another protocol: ignored.
    Ignore,
}

struct Side {
    state: State,
    /// Head bytes (or a chunk/trailer line) collected so far; held bytes in `Held`.
    buf: Vec<u8>,
    /// Start of the message being read, for its timestamp.
    started: Option<Timestamp>,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            state: State::Head,
            buf: Vec::new(),
            started: None,
        }
    }
}

/// HTTP/1 on one connection.
#[derive(Default)]
pub struct Http1 {
    client: Side,
    server: Side,
    pending: VecDeque<Pending>,
    /// Responses that came before their request was parsed. Normal after a hole in the
    /// client's stream: what follows the hole waits in reassembly while the server's answers
    /// flow. Paired in order as the requests come.
    early: VecDeque<Exchange>,
    /// Responses that came after requests or responses were lost: paired at the end.
    after_loss: Vec<Exchange>,
    /// The capture started inside the connection: answers before the first request seen
    /// belong to requests never captured.
    mid_stream: bool,
    seen_request: bool,
    /// A `Pending::Lost` is in `pending` (it never leaves: what follows it is paired at the
    /// end).
    lost: bool,
}

impl Http1 {
    pub fn new(mid_stream: bool) -> Self {
        Http1 {
            mid_stream,
            ..Http1::default()
        }
    }

    /// Takes bytes of one direction; returns the handover when the connection switches to
    /// HTTP/2.
    pub fn data(
        &mut self,
        dir: Direction,
        mut data: &[u8],
        at: Timestamp,
        log: &mut ExchangeLog,
    ) -> Option<Handover> {
        while !data.is_empty() {
            let used = match dir {
                Direction::ClientToServer => self.client_step(data, at, log),
                Direction::ServerToClient => match self.server_step(data, at, log) {
                    Step::Used(n) => n,
                    Step::Switch(to, exchange, n) => {
                        return Some(Handover {
                            to,
                            exchange,
                            client_bytes: std::mem::take(&mut self.client.buf),
                            server_bytes: data.get(n..).unwrap_or(&[]).to_vec(),
                        });
                    }
                },
            };
            data = data.get(used..).unwrap_or(&[]);
        }
        None
    }

    /// `len` bytes of a direction were lost.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        let side = self.side(dir);
        match &mut side.state {
            State::Length(left) if len <= *left => {
                *left -= len;
                if *left == 0 {
                    side.state = State::Head;
                }
                return;
            }
            State::Chunked(Chunk::Data(left)) if len <= *left => {
                *left -= len;
                if *left == 0 {
                    side.state = State::Chunked(Chunk::DataEnd(2));
                }
                return;
            }
            State::UntilClose | State::Ignore => return,
            _ => {}
        }
        self.lose(dir);
    }

    /// The direction ended: a close-delimited body is complete, a partial head is dropped.
    pub fn end(&mut self, dir: Direction) {
        let side = self.side(dir);
        if side.state == State::Held && dir == Direction::ClientToServer {
            // No response came to decide: what was held stays unparsed.
            side.buf.clear();
        }
    }

    /// Pairs what the losses left unpaired: from the end, assuming the last requests were
    /// answered; earlier answers stand alone (their requests were lost).
    pub fn finish(self, log: &mut ExchangeLog) {
        let unanswered: Vec<usize> = self
            .pending
            .iter()
            .filter_map(|p| match p {
                Pending::Request { exchange, .. } => *exchange,
                Pending::Lost => None,
            })
            .collect();
        // Early answers all came before any loss was known, so before the later ones.
        let waiting: Vec<Exchange> = self.early.into_iter().chain(self.after_loss).collect();
        let n = unanswered.len().min(waiting.len());
        let alone = waiting.len() - n;
        let mut waiting = waiting.into_iter();
        for o in waiting.by_ref().take(alone) {
            log.push(o);
        }
        let paired = unanswered.get(unanswered.len() - n..).unwrap_or(&[]);
        for (&i, o) in paired.iter().zip(waiting) {
            if let Some(e) = log.exchanges.get_mut(i) {
                answer(e, o, Pairing::Inferred);
            }
        }
    }

    /// Answers that came before their requests pair with them in order, as long as nothing
    /// was lost in between.
    fn pair_early(&mut self, log: &mut ExchangeLog) {
        while let (Some(Pending::Request { exchange, .. }), false) =
            (self.pending.front().copied(), self.early.is_empty())
        {
            let Some(r) = self.early.pop_front() else {
                break;
            };
            self.pending.pop_front();
            if let Some(x) = log.get_mut(exchange) {
                answer(x, r, Pairing::Exact);
            }
        }
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ClientToServer => &mut self.client,
            Direction::ServerToClient => &mut self.server,
        }
    }

    /// Sync lost in `dir`: note where in the pairing, and resynchronise. Two losses side by
    /// side say no more than one, so a stream of broken heads or gaps adds one entry, not
    /// one each (`max_exchanges` bounds only the requests).
    fn lose(&mut self, dir: Direction) {
        match dir {
            // Requests may be missing after those already pending.
            Direction::ClientToServer if self.pending.back() != Some(&Pending::Lost) => {
                self.pending.push_back(Pending::Lost)
            }
            // Responses may be missing: any pending request may have been answered.
            Direction::ServerToClient if self.pending.front() != Some(&Pending::Lost) => {
                self.pending.push_front(Pending::Lost)
            }
            _ => {}
        }
        self.lost = true;
        let side = self.side(dir);
        if !matches!(side.state, State::Ignore | State::UntilClose) {
            side.state = State::Resync;
            side.buf.clear();
            side.started = None;
        }
    }

    /// Parses the client bytes held after an Upgrade/CONNECT request as HTTP/1; should they
    /// hold another such request, what follows it is held again.
    fn replay_held(&mut self, at: Timestamp, log: &mut ExchangeLog) {
        let held = std::mem::take(&mut self.client.buf);
        self.client.state = State::Head;
        let mut rest = held.as_slice();
        while !rest.is_empty() && self.client.state != State::Held {
            let n = self.client_step(rest, at, log);
            rest = rest.get(n..).unwrap_or(&[]);
        }
        if self.client.state == State::Held {
            self.client.buf.extend_from_slice(rest);
        }
    }

    fn client_step(&mut self, data: &[u8], at: Timestamp, log: &mut ExchangeLog) -> usize {
        match self.client.state {
            State::Head => {
                let Some((used, head)) = collect_head(&mut self.client, data, at, log) else {
                    return data.len();
                };
                if !head.is_empty() {
                    self.request(&head, log);
                } else if self.client.state == State::Resync {
                    // A head over the limit was dropped: a request is missing.
                    self.lose(Direction::ClientToServer);
                }
                used
            }
            State::Resync => resync(&mut self.client, data, at, looks_like_request_line),
            State::Held => {
                let room = MAX_HELD.saturating_sub(self.client.buf.len());
                if room == 0 {
                    // Nothing came to decide: go on as HTTP/1.
                    self.replay_held(at, log);
                    return 0;
                }
                let n = room.min(data.len());
                self.client
                    .buf
                    .extend_from_slice(data.get(..n).unwrap_or(&[]));
                n
            }
            _ => body_step(&mut self.client, data, log),
        }
    }

    fn server_step(&mut self, data: &[u8], at: Timestamp, log: &mut ExchangeLog) -> Step {
        match self.server.state {
            State::Head => {
                let Some((used, head)) = collect_head(&mut self.server, data, at, log) else {
                    return Step::Used(data.len());
                };
                if head.is_empty() {
                    if self.server.state == State::Resync {
                        // A head over the limit was dropped: a response is missing.
                        self.lose(Direction::ServerToClient);
                    }
                    return Step::Used(used);
                }
                match self.response(&head, log) {
                    Some((to, exchange)) => Step::Switch(to, exchange, used),
                    None => Step::Used(used),
                }
            }
            State::Resync => Step::Used(resync(&mut self.server, data, at, looks_like_status_line)),
            State::Held => Step::Used(data.len()),
            _ => Step::Used(body_step(&mut self.server, data, log)),
        }
    }

    fn request(&mut self, head: &Head, log: &mut ExchangeLog) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head.bytes), Ok(httparse::Status::Complete(_))) {
            log.anomalies.add(Anomaly::Http1HeadInvalid);
            self.lose(Direction::ClientToServer);
            return;
        }
        let method = req.method.unwrap_or("");
        let target = req.path.unwrap_or("").as_bytes();
        let mut e = Exchange {
            version: Some(version(req.version)),
            request_seen: true,
            request_time: Some(head.started),
            method: Some(log.text(method.as_bytes())),
            path: Some(log.text(target)),
            ..Exchange::default()
        };
        let mut upgrade = None;
        let framing = Framing::of(req.headers, &mut e, log, &mut upgrade);
        if let Some((scheme, authority)) = absolute_form(target) {
            e.scheme = Some(log.text(scheme));
            e.authority = Some(log.text(authority));
        } else if method == "CONNECT" {
            // authority-form: the target is the authority.
            e.authority = e.path.clone();
        }
        if e.authority.is_none() {
            e.authority = e.host.clone();
        }
        let kind = match method {
            "HEAD" => MethodKind::Head,
            "CONNECT" => MethodKind::Connect,
            _ => MethodKind::Other,
        };
        let upgrade_h2c = upgrade
            .as_deref()
            .is_some_and(|u: &str| u.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c")));
        let exchange = log.push(e);
        self.seen_request = true;
        if self.pending.len() >= log.limits.max_exchanges {
            // That many requests unanswered: the server is not answering them in order, or
            // its answers are not captured. Pairing is unknown from here (and memory stays
            // bounded).
            self.pending.clear();
            self.pending.push_back(Pending::Lost);
            self.lost = true;
        }
        self.pending.push_back(Pending::Request {
            exchange,
            method: kind,
            upgrade_h2c,
        });
        self.pair_early(log);
        let next = match framing {
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::Length(n) if n > 0 => State::Length(n),
            _ => State::Head,
        };
        // After an Upgrade or CONNECT request, hold what follows until the response says
        // what it is. (A request body comes first; an upgrade after a body is not followed.)
        let switching = kind == MethodKind::Connect || upgrade.is_some();
        self.client.state = if switching && next == State::Head {
            State::Held
        } else {
            next
        };
    }

    fn response(
        &mut self,
        head: &Head,
        log: &mut ExchangeLog,
    ) -> Option<(SwitchTo, Option<usize>)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let parsed = httparse::ParserConfig::default()
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_spaces_after_header_name_in_responses(true)
            .parse_response(&mut resp, &head.bytes);
        let status = match (parsed, resp.code) {
            (Ok(httparse::Status::Complete(_)), Some(code)) => code,
            _ => {
                log.anomalies.add(Anomaly::Http1HeadInvalid);
                self.lose(Direction::ServerToClient);
                return None;
            }
        };
        let mut e = Exchange {
            version: Some(version(resp.version)),
            status: Some(status),
            reason: resp.reason.map(|r| log.text(r.as_bytes())),
            response_time: Some(head.started),
            ..Exchange::default()
        };
        let mut upgrade = None;
        let framing = Framing::of(resp.headers, &mut e, log, &mut upgrade);
        let front = self.pending.front().copied();
        let (exchange, method, upgrade_h2c) = match front {
            Some(Pending::Request {
                exchange,
                method,
                upgrade_h2c,
            }) => (Some(exchange), method, upgrade_h2c),
            Some(Pending::Lost) | None => (None, MethodKind::Other, false),
        };
        if (100..200).contains(&status) && status != 101 {
            if let Some(x) = log.get_mut(exchange.flatten()) {
                x.add_interim(status);
            }
            self.server.state = State::Head;
            return None;
        }
        if exchange.is_some() {
            self.pending.pop_front();
        }
        let switched =
            status == 101 || (method == MethodKind::Connect && (200..300).contains(&status));
        self.server.state =
            if switched || method == MethodKind::Head || status == 204 || status == 304 {
                State::Head
            } else {
                match framing {
                    Framing::Chunked => State::Chunked(Chunk::Size),
                    Framing::Length(0) => State::Head,
                    Framing::Length(n) => State::Length(n),
                    Framing::None => State::UntilClose,
                }
            };
        let target = match exchange {
            Some(i) => i,
            None => {
                // Nothing to pair with yet: after a loss it is paired at the end; before the
                // first request of a capture that started late it stands alone; otherwise its
                // request is still on its way.
                let waiting = self.early.len() + self.after_loss.len();
                if waiting >= log.limits.max_exchanges || (self.mid_stream && !self.seen_request) {
                    log.push(e);
                } else if self.lost {
                    self.after_loss.push(e);
                } else {
                    self.early.push_back(e);
                }
                if switched {
                    self.tunnel();
                }
                return None;
            }
        };
        // The protocol switched to is the one the 101 names (RFC 9110 §7.8); only a 101
        // without an Upgrade field falls back to what the request asked for. (Going by the
        // request alone, a 101 naming h2c the request had not asked for switched to HTTP/2
        // without making the exchange stream 1, and a 101 choosing websocket over a
        // requested h2c switched to HTTP/2.)
        let h2c = status == 101
            && upgrade.as_deref().map_or(upgrade_h2c, |u: &str| {
                u.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"))
            });
        if let Some(x) = log.get_mut(target) {
            if h2c {
                // The final response comes on HTTP/2 stream 1.
                x.add_interim(101);
                x.stream_id = Some(std::num::NonZeroU32::MIN);
            } else {
                answer(x, e, Pairing::Exact);
            }
        }
        if !switched {
            if self.client.state == State::Held {
                // Upgrade refused: the held bytes are HTTP/1 after all.
                self.replay_held(head.started, log);
            }
            return None;
        }
        // What the connection becomes: decided by the status and method, never by the
        // Upgrade token's text (a 101 naming "tunnel" is a protocol like any other).
        let (to, switch) = if h2c {
            ("h2c".to_string(), Some(SwitchTo::H2c))
        } else if status == 101 {
            let token = upgrade.unwrap_or_else(|| "unknown".into());
            (token.to_ascii_lowercase(), None)
        } else {
            ("tunnel".to_string(), Some(SwitchTo::Tunnel))
        };
        // The Upgrade token is a header value as sent: kept cut at the field limit like every
        // other (it was kept whole, however long).
        let to = log.text(to.as_bytes());
        if let Some(x) = log.get_mut(target) {
            x.rare_mut().upgraded_to = Some(to);
        }
        if let Some(to) = switch {
            return Some((to, target));
        }
        self.tunnel();
        None
    }

    fn tunnel(&mut self) {
        for side in [&mut self.client, &mut self.server] {
            side.state = State::Ignore;
            side.buf = Vec::new();
        }
    }
}

enum Step {
    Used(usize),
    /// Switched protocols after `usize` bytes of this piece.
    Switch(SwitchTo, Option<usize>, usize),
}

fn answer(x: &mut Exchange, r: Exchange, pairing: Pairing) {
    for &s in &r.rare().interim {
        x.add_interim(s);
    }
    x.status = r.status;
    x.reason = r.reason;
    x.response_time = r.response_time;
    x.server = r.server;
    x.content_length = r.content_length;
    x.pairing = pairing;
}

fn version(v: Option<u8>) -> HttpVersion {
    match v {
        Some(0) => HttpVersion::Http10,
        _ => HttpVersion::Http11,
    }
}

/// A complete message head and when it started.
struct Head {
    bytes: Vec<u8>,
    started: Timestamp,
}

impl Head {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Collects head bytes until the blank line. Returns the bytes of `data` used and the head
/// (empty when only leading blank lines were skipped), or `None` when all of `data` was
/// taken and the head is not complete yet.
fn collect_head(
    side: &mut Side,
    data: &[u8],
    at: Timestamp,
    log: &mut ExchangeLog,
) -> Option<(usize, Head)> {
    let mut data_used = 0;
    if side.buf.is_empty() {
        // RFC 9112 §2.2: ignore blank lines before a request line.
        let skip = data
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if skip > 0 {
            return Some((
                skip,
                Head {
                    bytes: Vec::new(),
                    started: at,
                },
            ));
        }
        side.started = Some(at);
    }
    let search_from = side.buf.len().saturating_sub(3);
    let limit = log.limits.max_head_bytes;
    let room = limit.saturating_sub(side.buf.len());
    let take = data.len().min(room.max(1));
    side.buf.extend_from_slice(data.get(..take).unwrap_or(&[]));
    data_used += take;
    // The head ends at its first empty line: a LF followed by CRLF or, with the bare-LF line
    // ends clients and servers alike tolerate, by LF. The earliest wins. (Looking for
    // "\r\n\r\n" first and "\n\n" only without one made the head depend on where the
    // stream was cut: an "\n\n" before a "\r\n\r\n" in one piece was passed over, in two
    // pieces it ended the head.)
    let found = side.buf.get(search_from..).and_then(|b| {
        b.windows(2).enumerate().find_map(|(i, w)| match w {
            [b'\n', b'\n'] => Some(search_from + i + 2),
            [b'\n', b'\r'] if b.get(i + 2) == Some(&b'\n') => Some(search_from + i + 3),
            _ => None,
        })
    });
    match found {
        Some(end) => {
            let extra = side.buf.len() - end;
            side.buf.truncate(end);
            let bytes = std::mem::take(&mut side.buf);
            let started = side.started.take().unwrap_or(at);
            Some((data_used - extra, Head { bytes, started }))
        }
        None if side.buf.len() >= limit => {
            log.anomalies.add(Anomaly::Http1HeadLimit);
            side.buf.clear();
            side.started = None;
            side.state = State::Resync;
            Some((
                data_used,
                Head {
                    bytes: Vec::new(),
                    started: at,
                },
            ))
        }
        None => None,
    }
}

/// Skips body bytes per the direction's framing; returns the bytes used.
fn body_step(side: &mut Side, data: &[u8], log: &mut ExchangeLog) -> usize {
    match side.state {
        State::Length(left) => {
            let n = (left.min(data.len() as u64)) as usize;
            side.state = if left == n as u64 {
                State::Head
            } else {
                State::Length(left - n as u64)
            };
            n
        }
        State::UntilClose | State::Ignore => data.len(),
        State::Chunked(chunk) => chunked_step(side, chunk, data, log),
        State::Head | State::Held | State::Resync => 0,
    }
}

fn chunked_step(side: &mut Side, chunk: Chunk, data: &[u8], log: &mut ExchangeLog) -> usize {
    match chunk {
        Chunk::Data(left) => {
            let n = (left.min(data.len() as u64)) as usize;
            side.state = State::Chunked(if left == n as u64 {
                Chunk::DataEnd(2)
            } else {
                Chunk::Data(left - n as u64)
            });
            n
        }
        Chunk::DataEnd(left) => {
            // Tolerate a bare LF: skip up to the LF.
            let n = data
                .iter()
                .take(usize::from(left))
                .position(|&b| b == b'\n')
                .map_or(usize::from(left).min(data.len()), |p| p + 1);
            let done = data.get(..n).is_some_and(|b| b.contains(&b'\n'));
            side.state = State::Chunked(if done || n >= usize::from(left) {
                Chunk::Size
            } else {
                Chunk::DataEnd(left - n as u8)
            });
            n
        }
        Chunk::Size | Chunk::Trailers => {
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                if side.buf.len() + data.len() > 4096 {
                    log.anomalies.add(Anomaly::Http1ChunkInvalid);
                    side.state = State::Resync;
                    side.buf.clear();
                } else {
                    side.buf.extend_from_slice(data);
                }
                return data.len();
            };
            side.buf.extend_from_slice(data.get(..=nl).unwrap_or(&[]));
            let line = std::mem::take(&mut side.buf);
            if chunk == Chunk::Trailers {
                if line == b"\r\n" || line == b"\n" {
                    side.state = State::Head;
                }
                return nl + 1;
            }
            match httparse::parse_chunk_size(&line) {
                Ok(httparse::Status::Complete((_, 0))) => {
                    side.state = State::Chunked(Chunk::Trailers);
                }
                Ok(httparse::Status::Complete((_, size))) => {
                    side.state = State::Chunked(Chunk::Data(size));
                }
                _ => {
                    log.anomalies.add(Anomaly::Http1ChunkInvalid);
                    side.state = State::Resync;
                }
            }
            nl + 1
        }
    }
}

/// Looks for the next line that starts a message; everything before it is dropped.
fn resync(side: &mut Side, data: &[u8], at: Timestamp, looks_like: fn(&[u8]) -> bool) -> usize {
    // Work on whole lines: keep the current partial line in `buf`.
    let mut used = 0;
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (line, after) = rest.split_at(nl + 1);
        if side.buf.is_empty() && looks_like(line) {
            side.state = State::Head;
            return used;
        }
        if !side.buf.is_empty() {
            side.buf.extend_from_slice(line);
            let whole = std::mem::take(&mut side.buf);
            if looks_like(&whole) {
                // The start line began in an earlier piece: give it back to the head reader.
                side.state = State::Head;
                side.buf = whole;
                side.buf.truncate(side.buf.len() - line.len());
                return used;
            }
        }
        used += line.len();
        rest = after;
    }
    if side.buf.len() + rest.len() <= 8192 {
        if side.buf.is_empty() && !rest.is_empty() {
            // A line may start here: its head's time, should it be a start line.
            side.started = Some(at);
        }
        side.buf.extend_from_slice(rest);
    } else {
        side.buf.clear();
    }
    data.len()
}

fn looks_like_request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let method = line.get(..sp).unwrap_or(&[]);
    (1..=20).contains(&method.len())
        && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-')
        && (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
}

fn looks_like_status_line(line: &[u8]) -> bool {
    line.len() >= 12
        && (line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 "))
        && line
            .get(9..12)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

/// Whether the stream's first bytes start an HTTP/1 request (`client`) or response. `None`
/// while too few bytes are at hand to tell.
pub fn detect(b: &[u8], client: bool) -> Option<bool> {
    let line_end = b.iter().position(|&c| c == b'\n');
    if client {
        match line_end {
            Some(n) => Some(looks_like_request_line(b.get(..=n).unwrap_or(b))),
            None if b.len() >= 2048 => Some(false),
            None => {
                // A method token so far: wait for the line; anything else: not HTTP/1.
                let tok = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
                let ok = tok <= 20
                    && b.get(..tok)
                        .is_some_and(|t| t.iter().all(|c| c.is_ascii_uppercase() || *c == b'-'));
                if ok {
                    None
                } else {
                    Some(false)
                }
            }
        }
    } else {
        let want = b"HTTP/1.";
        let n = b.len().min(want.len());
        if b.get(..n) != want.get(..n) {
            return Some(false);
        }
        if b.len() < 12 {
            return None;
        }
        Some(looks_like_status_line(b))
    }
}

/// How a message's body is delimited, from its headers; the headers the report keeps are
/// copied into `e` on the way.
enum Framing {
    Chunked,
    Length(u64),
    /// Neither: no body for a request, until close for a response.
    None,
}

impl Framing {
    fn of(
        headers: &[httparse::Header<'_>],
        e: &mut Exchange,
        log: &mut ExchangeLog,
        upgrade: &mut Option<String>,
    ) -> Framing {
        let mut chunked = None;
        let mut length: Option<Option<u64>> = None;
        for h in headers {
            let v = h.value;
            let name = h.name;
            let slot = if name.eq_ignore_ascii_case("host") {
                &mut e.host
            } else if name.eq_ignore_ascii_case("forwarded") {
                &mut e.rare_mut().forwarded
            } else if name.eq_ignore_ascii_case("x-forwarded-host") {
                &mut e.rare_mut().x_forwarded_host
            } else if name.eq_ignore_ascii_case("via") {
                &mut e.rare_mut().via
            } else if name.eq_ignore_ascii_case("server") {
                &mut e.server
            } else {
                if name.eq_ignore_ascii_case("transfer-encoding") {
                    // The last coding decides (RFC 9112 §6.3).
                    let last = v.rsplit(|&b| b == b',').next().unwrap_or(&[]);
                    chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                } else if name.eq_ignore_ascii_case("content-length") {
                    let n = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    length = Some(match length {
                        None => n,
                        Some(prev) if prev == n => n,
                        Some(_) => None,
                    });
                } else if name.eq_ignore_ascii_case("upgrade") {
                    *upgrade = Some(String::from_utf8_lossy(v).trim().to_string());
                }
                continue;
            };
            if slot.is_none() {
                *slot = Some(log.text(v));
            }
        }
        if let Some(Some(n)) = length {
            e.content_length = Some(n);
        }
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::None,
            (None, Some(Some(n))) => Framing::Length(n),
            (None, Some(None)) => {
                log.anomalies.add(Anomaly::Http1HeadInvalid);
                Framing::None
            }
            (None, None) => Framing::None,
        }
    }
}

/// `scheme://authority/...` → (scheme, authority).
fn absolute_form(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = target.get(..sep)?;
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return None;
    }
    let rest = target.get(sep + 3..)?;
    let end = rest
        .iter()
        .position(|b| b"/?#".contains(b))
        .unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    // Userinfo is not part of the host the server compares.
    let authority = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => authority.get(at + 1..)?,
        None => authority,
    };
    Some((scheme, authority))
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;
    use crate::proto::http::{HttpConn, Start};

    fn run(request: &[u8], response: &[u8]) -> Vec<Exchange> {
        let mut c = HttpConn::new(Start::Http1, false, crate::Limits::default().http());
        c.data(Direction::ClientToServer, request, Timestamp(0));
        c.data(Direction::ServerToClient, response, Timestamp(1));
        c.finish().0.exchanges
    }

    /// Broken heads without end, from both sides, keep one loss marker each, not one per head.
    #[test]
    fn losses_in_a_row_are_one() {
        let mut h = Http1::new(false);
        let mut log = ExchangeLog::new(crate::Limits::default().http());
        for _ in 0..10_000 {
            h.data(
                Direction::ClientToServer,
                b"GET / HTTP/1.1\r\nx\r\n\r\n",
                Timestamp(0),
                &mut log,
            );
            h.data(
                Direction::ServerToClient,
                b"HTTP/1.1 200 OK\r\nx\r\n\r\n",
                Timestamp(1),
                &mut log,
            );
        }
        assert!(h.pending.len() <= 2, "{} pending", h.pending.len());
        assert!(log.exchanges.is_empty());
    }

    /// The 101's Upgrade says what the connection switches to, not the request's.
    #[test]
    fn the_101_names_the_protocol() {
        let rst_stream_1 = [0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let mut resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        resp.extend(rst_stream_1);
        let e = run(b"GET / HTTP/1.1\r\nUpgrade: h2c, websocket\r\n\r\n", &resp);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].rare().upgraded_to.as_deref(), Some("websocket"));
        assert_eq!((e[0].status, e[0].stream_id), (Some(101), None));
        assert_eq!(e[0].rare().reset, None, "WebSocket bytes are not HTTP/2");

        let mut resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n".to_vec();
        resp.extend(rst_stream_1);
        let e = run(b"GET / HTTP/1.1\r\nUpgrade: foo\r\n\r\n", &resp);
        assert_eq!(e[0].rare().upgraded_to.as_deref(), Some("h2c"));
        assert_eq!(
            (
                e[0].stream_id.map(std::num::NonZeroU32::get),
                &e[0].rare().interim
            ),
            (Some(1), &vec![101])
        );
        assert!(
            e[0].rare().reset.is_some(),
            "stream 1 is the upgraded request"
        );
    }
}
