//! HTTP/2 on one connection (RFC 9113): frames to exchanges.
//!
//! Contract: [`Http2::data`] takes each direction's bytes in order; frames come from
//! [`frame::FrameReader`], header blocks (HEADERS or PUSH_PROMISE with their CONTINUATIONs)
//! are joined and decoded by the direction's [`hpack::Decoder`]. Client header blocks open
//! exchanges by stream id, server ones answer them (1xx interim, then final, then trailers).
//! RST_STREAM marks the exchange; GOAWAY, ORIGIN, ALTSVC and SETTINGS_HEADER_TABLE_SIZE are
//! kept for the connection ([`Http2Info`]).
//!
//! Recovery: a lost header block, or one that does not decode, desynchronises that
//! direction's HPACK table ([`hpack`] explains what stays known); a gap across a frame
//! boundary ends the direction's parsing (HTTP/2 cannot resynchronise).

pub mod frame;
pub mod hpack;

use super::{
    h2_error_name, Exchange, ExchangeLog, Goaway, Http2Info, HttpLimits, HttpVersion, Reset,
};
use crate::anomaly::Anomaly;
use crate::flow::Direction;
use crate::intern::ArcStr;
use crate::proto::codec::Reader;
use crate::Timestamp;
use frame::{flag, kind, Frame, FrameReader};
use std::collections::BTreeMap;
use thin_vec::ThinVec;

/// Bytes of GOAWAY debug data kept.
const MAX_DEBUG: usize = 256;
/// ALTSVC values and GOAWAY frames kept per connection.
const MAX_LISTED: usize = 16;

/// Where a header block belongs: its HEADERS or PUSH_PROMISE frame's stream, the stream
/// it promises, and when it came.
#[derive(Clone, Copy)]
struct BlockHead {
    stream: u32,
    promised: Option<u32>,
    time: Timestamp,
}

/// A header block being joined from HEADERS/PUSH_PROMISE and CONTINUATION frames. A block
/// in one frame is decoded where it lies, never held.
struct Block {
    head: BlockHead,
    buf: Vec<u8>,
    /// CONTINUATION frames so far.
    continuations: usize,
    /// Too large: its fragments are dropped and the table desynchronised when it ends.
    overflow: bool,
}

struct Side {
    reader: FrameReader,
    hpack: hpack::Decoder,
    /// Boxed: rarely any, and every HTTP/2 connection would keep room for two.
    block: Option<Box<Block>>,
}

/// Stream id → exchange. A sorted list while short: most connections carry a few streams,
/// and a map's first node takes about 240 bytes. A map past that, so that hostile stream
/// ids cannot make inserting slow.
/// Each kind is one pointer (a `ThinVec`, a boxed map), so that the list costs 16 bytes,
/// not 32.
#[allow(clippy::box_collection)]
enum Streams {
    Few(ThinVec<(u32, Slot)>),
    Many(Box<BTreeMap<u32, Option<usize>>>),
}

/// An exchange's position in a short list's entry: 0 for none, else the position + 1. An
/// entry is 8 bytes, where `(u32, Option<usize>)` is 24.
#[derive(Clone, Copy)]
struct Slot(u32);

impl Slot {
    /// A position past `u32::MAX - 1` (more exchanges than a connection could keep in
    /// memory) is none: its frames are then not paired with an exchange.
    fn new(exchange: Option<usize>) -> Self {
        Slot(
            exchange
                .and_then(|i| u32::try_from(i).ok()?.checked_add(1))
                .unwrap_or(0),
        )
    }

    fn get(self) -> Option<usize> {
        self.0.checked_sub(1).map(|i| i as usize)
    }
}

/// Streams kept in the sorted list before it becomes a map.
const FEW_STREAMS: usize = 16;

impl Default for Streams {
    fn default() -> Self {
        Streams::Few(ThinVec::new())
    }
}

impl Streams {
    fn get(&self, stream: u32) -> Option<Option<usize>> {
        match self {
            Streams::Few(v) => v
                .binary_search_by_key(&stream, |&(s, _)| s)
                .ok()
                .and_then(|at| v.get(at))
                .map(|&(_, i)| i.get()),
            Streams::Many(m) => m.get(&stream).copied(),
        }
    }

    fn insert(&mut self, stream: u32, exchange: Option<usize>) {
        match self {
            Streams::Few(v) => match v.binary_search_by_key(&stream, |&(s, _)| s) {
                Ok(at) => {
                    if let Some(e) = v.get_mut(at) {
                        e.1 = Slot::new(exchange);
                    }
                }
                Err(_) if v.len() == FEW_STREAMS => {
                    let mut m: BTreeMap<_, _> = v.drain(..).map(|(s, i)| (s, i.get())).collect();
                    m.insert(stream, exchange);
                    *self = Streams::Many(Box::new(m));
                }
                Err(at) => {
                    // Grown one by one: a connection's first streams are most of its streams.
                    v.reserve_exact(1);
                    v.insert(at, (stream, Slot::new(exchange)));
                }
            },
            Streams::Many(m) => {
                m.insert(stream, exchange);
            }
        }
    }
}

/// HTTP/2 on one connection.
pub struct Http2 {
    client: Side,
    server: Side,
    /// Stream id → exchange (`None` when the exchange list was full).
    streams: Streams,
    /// SETTINGS_HEADER_TABLE_SIZE as the client and the server announced it.
    table_sizes: [Option<u32>; 2],
    /// GOAWAYs, ORIGIN set and Alt-Svc values, made at the first: 72 bytes that most
    /// connections would keep empty while open.
    info: Option<Box<Http2Info>>,
}

impl Http2 {
    /// `preface`: the client's stream starts with the connection preface (else it may, when
    /// the server's frames came first). `mid_stream`: the capture did not see the connection
    /// start, so HPACK tables hold unseen entries.
    pub fn new(preface: bool, mid_stream: bool, limits: &HttpLimits) -> Self {
        let side = |preface| Side {
            reader: FrameReader::new(preface),
            hpack: hpack::Decoder::new(mid_stream, limits.max_hpack_table),
            block: None,
        };
        Http2 {
            client: side(Some(!preface)),
            server: side(None),
            streams: Streams::default(),
            table_sizes: [None; 2],
            info: None,
        }
    }

    /// After an h2c Upgrade: the upgraded request is stream 1 (RFC 9113 §3.2 of RFC 7540).
    pub fn after_upgrade(exchange: Option<usize>, limits: &HttpLimits) -> Self {
        let mut h2 = Http2::new(true, false, limits);
        h2.streams.insert(1, exchange);
        h2
    }

    pub fn data(&mut self, dir: Direction, data: &[u8], at: Timestamp, log: &mut ExchangeLog) {
        let max_payload = log.limits.max_header_block;
        self.read(dir, at, log, Anomaly::Http2PrefaceInvalid, |r, out| {
            r.push(data, max_payload, out)
        });
    }

    pub fn gap(&mut self, dir: Direction, len: u64, at: Timestamp, log: &mut ExchangeLog) {
        self.read(dir, at, log, Anomaly::Http2FramingLost, |r, out| {
            r.gap(len, out)
        });
    }

    /// Runs `step` on the direction's frame reader and handles each frame it yields as it
    /// comes. The reader is taken out meanwhile (the handler needs all of `self`), so frame
    /// payloads are handled where they lie, never copied.
    fn read(
        &mut self,
        dir: Direction,
        at: Timestamp,
        log: &mut ExchangeLog,
        broke: Anomaly,
        step: impl FnOnce(&mut FrameReader, &mut dyn FnMut(Frame<'_>)),
    ) {
        let mut reader = std::mem::replace(&mut self.side(dir).reader, FrameReader::new(None));
        let had_error = reader.error().is_some();
        step(&mut reader, &mut |f| self.frame(dir, f, at, log));
        if !had_error && reader.error().is_some() {
            log.anomalies.add(broke);
        }
        self.side(dir).reader = reader;
    }

    pub fn finish(self) -> Http2Info {
        let [client, server] = self.table_sizes;
        Http2Info {
            preface_seen: self.client.reader.preface_seen(),
            client_header_table_size: client,
            server_header_table_size: server,
            ..self.info.map(|i| *i).unwrap_or_default()
        }
    }

    fn info(&mut self) -> &mut Http2Info {
        self.info.get_or_insert_with(Box::default)
    }

    fn side(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::ClientToServer => &mut self.client,
            Direction::ServerToClient => &mut self.server,
        }
    }

    fn frame(&mut self, dir: Direction, f: Frame<'_>, at: Timestamp, log: &mut ExchangeLog) {
        let hdr = match f {
            Frame::Full(h, _) | Frame::Skipped(h, _) | Frame::Lost(h) => h,
        };
        // A header block must be continued by CONTINUATION frames of its stream only.
        let expecting = self.side(dir).block.as_ref().map(|b| b.head.stream);
        if let Some(stream) = expecting {
            if hdr.kind != kind::CONTINUATION || hdr.stream != stream {
                log.anomalies.add(Anomaly::Http2ContinuationMissing);
                let side = self.side(dir);
                side.block = None;
                side.hpack.desynchronise();
            }
        }
        let payload = match f {
            Frame::Full(_, p) => p,
            Frame::Skipped(_, oversized) => {
                if oversized {
                    log.anomalies.add(Anomaly::Http2FrameLimit);
                    if is_header_frame(hdr.kind) {
                        let side = self.side(dir);
                        side.block = None;
                        side.hpack.desynchronise();
                    }
                }
                return;
            }
            Frame::Lost(_) => {
                if is_header_frame(hdr.kind) {
                    let side = self.side(dir);
                    side.block = None;
                    side.hpack.desynchronise();
                }
                return;
            }
        };
        match hdr.kind {
            kind::HEADERS | kind::PUSH_PROMISE => {
                let Some((promised, fragment)) = frame::header_block(&hdr, payload) else {
                    log.anomalies.add(Anomaly::Http2FrameInvalid);
                    self.side(dir).hpack.desynchronise();
                    return;
                };
                let head = BlockHead {
                    stream: hdr.stream,
                    promised,
                    time: at,
                };
                if hdr.has(flag::END_HEADERS) {
                    self.header_block(dir, head, fragment, log);
                } else {
                    self.side(dir).block = Some(Box::new(Block {
                        head,
                        buf: fragment.to_vec(),
                        continuations: 0,
                        overflow: false,
                    }));
                }
            }
            kind::CONTINUATION => {
                let (max, max_continuations) =
                    (log.limits.max_header_block, log.limits.max_continuations);
                let side = self.side(dir);
                let Some(block) = side.block.as_mut() else {
                    log.anomalies.add(Anomaly::Http2ContinuationMissing);
                    side.hpack.desynchronise();
                    return;
                };
                block.continuations += 1;
                let limit = if block.continuations > max_continuations {
                    Some(Anomaly::Http2ContinuationLimit)
                } else if block.buf.len() + payload.len() > max {
                    Some(Anomaly::Http2HeaderBlockLimit)
                } else {
                    None
                };
                match limit {
                    Some(anomaly) if !block.overflow => {
                        log.anomalies.add(anomaly);
                        block.overflow = true;
                        block.buf = Vec::new();
                    }
                    None if !block.overflow => block.buf.extend_from_slice(payload),
                    _ => {}
                }
                if !hdr.has(flag::END_HEADERS) {
                    return;
                }
                let Some(block) = side.block.take() else {
                    return;
                };
                if block.overflow {
                    side.hpack.desynchronise();
                } else {
                    self.header_block(dir, block.head, &block.buf, log);
                }
            }
            kind::RST_STREAM => {
                let Ok(code) = <[u8; 4]>::try_from(payload) else {
                    log.anomalies.add(Anomaly::Http2FrameInvalid);
                    return;
                };
                // A reset of a stream never seen opening says nothing about a request.
                let Some(i) = self.streams.get(hdr.stream) else {
                    return;
                };
                if let Some(e) = log.get_mut(i) {
                    e.rare_mut().reset.get_or_insert(Reset {
                        by: dir,
                        error: h2_error_name(u32::from_be_bytes(code)),
                    });
                }
            }
            kind::SETTINGS if !hdr.has(flag::ACK) => {
                if payload.len() % 6 != 0 || hdr.stream != 0 {
                    log.anomalies.add(Anomaly::Http2FrameInvalid);
                    return;
                }
                let mut r = Reader::new(payload);
                while let (Some(id), Some(value)) = (r.u16(), r.u32()) {
                    if id == 1 {
                        // The sender's decoder: the peer's encoder may use this much.
                        let decoder = match dir {
                            Direction::ClientToServer => {
                                self.table_sizes[0] = Some(value);
                                &mut self.server.hpack
                            }
                            Direction::ServerToClient => {
                                self.table_sizes[1] = Some(value);
                                &mut self.client.hpack
                            }
                        };
                        decoder.set_allowed_size(value);
                    }
                }
            }
            kind::GOAWAY => {
                let mut r = Reader::new(payload);
                let (Some(last), Some(code)) = (r.u32(), r.u32()) else {
                    log.anomalies.add(Anomaly::Http2FrameInvalid);
                    return;
                };
                let debug = r.rest();
                let goaway = &mut self.info().goaway;
                if goaway.len() < MAX_LISTED {
                    goaway.push(Goaway {
                        by: dir,
                        time: at,
                        last_stream_id: last & 0x7fff_ffff,
                        error: h2_error_name(code),
                        debug: (!debug.is_empty())
                            .then(|| super::text_owned(debug, MAX_DEBUG, &mut log.anomalies)),
                    });
                }
            }
            kind::ORIGIN if dir == Direction::ServerToClient && hdr.stream == 0 => {
                let set = self.info().origin_set.get_or_insert_with(Vec::new);
                let mut r = Reader::new(payload);
                while !r.is_empty() {
                    let Some(entry) = r.sub_u16() else {
                        log.anomalies.add(Anomaly::Http2FrameInvalid);
                        break;
                    };
                    if set.len() < log.limits.max_exchanges {
                        set.push(super::text_owned(
                            entry.rest(),
                            log.limits.max_field_bytes,
                            &mut log.anomalies,
                        ));
                    }
                }
            }
            kind::ALTSVC if dir == Direction::ServerToClient => {
                let mut r = Reader::new(payload);
                let value = r.sub_u16().map(|_origin| r.rest());
                match value {
                    Some(v)
                        if self
                            .info
                            .as_ref()
                            .is_none_or(|i| i.alt_svc.len() < MAX_LISTED) =>
                    {
                        let v =
                            super::text_owned(v, log.limits.max_field_bytes, &mut log.anomalies);
                        self.info().alt_svc.push(v);
                    }
                    Some(_) => {}
                    None => log.anomalies.add(Anomaly::Http2FrameInvalid),
                }
            }
            _ => {}
        }
    }

    /// The exchange of `stream`, created when the stream was not seen opening.
    fn exchange(&mut self, stream: u32, log: &mut ExchangeLog) -> Option<usize> {
        if let Some(i) = self.streams.get(stream) {
            return i;
        }
        let stream_id = Some(std::num::NonZeroU32::new(stream)?);
        let i = log.push(Exchange {
            stream_id,
            version: Some(HttpVersion::Http2),
            ..Exchange::default()
        });
        // Past the exchange limit nothing is remembered: the map stays bounded.
        if i.is_some() {
            self.streams.insert(stream, i);
        }
        i
    }

    /// A whole header block: decoded, and its fields given to its exchange.
    fn header_block(&mut self, dir: Direction, head: BlockHead, buf: &[u8], log: &mut ExchangeLog) {
        let max_list = log.limits.max_header_list;
        let side = self.side(dir);
        let mut fields = Fields::default();
        let max = log.limits.max_field_bytes;
        // Past the list limit the block is still decoded, for its table updates.
        let mut list = 0usize;
        let result = side.hpack.decode(buf, &mut |f| match f {
            _ if list > max_list => {}
            hpack::Field::Known { name, value } => {
                list = list.saturating_add(name.len() + value.len() + 32);
                if list <= max_list {
                    fields.take(name, value, max);
                }
            }
            hpack::Field::Unknown => fields.unknown += 1,
        });
        if result.is_err() {
            log.anomalies.add(Anomaly::HpackInvalid);
        }
        if list > max_list {
            log.anomalies.add(Anomaly::Http2HeaderListLimit);
        }
        if fields.cut {
            log.anomalies.add(Anomaly::HttpFieldTruncated);
        }
        if head.stream == 0 {
            log.anomalies.add(Anomaly::Http2FrameInvalid);
            return;
        }
        match (dir, head.promised) {
            (Direction::ServerToClient, Some(promised)) => {
                let i = self.exchange(promised, log);
                if let Some(e) = log.get_mut(i) {
                    e.pushed = true;
                    fields.fill_request(e, head.time);
                }
            }
            (Direction::ClientToServer, _) => {
                let (known, i) = match self.streams.get(head.stream) {
                    Some(i) => (true, i),
                    None => (false, self.exchange(head.stream, log)),
                };
                if let Some(e) = log.get_mut(i) {
                    // A second client block on a stream is trailers.
                    if !known || !e.request_seen {
                        fields.fill_request(e, head.time);
                    }
                }
            }
            (Direction::ServerToClient, None) => {
                let i = self.exchange(head.stream, log);
                if let Some(e) = log.get_mut(i) {
                    fields.fill_response(e, head.time);
                }
            }
        }
    }
}

fn is_header_frame(k: u8) -> bool {
    matches!(k, kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION)
}

/// The fields of a header block the report keeps.
#[derive(Default)]
struct Fields {
    method: Option<ArcStr>,
    scheme: Option<ArcStr>,
    authority: Option<ArcStr>,
    path: Option<ArcStr>,
    /// Parsed where they lie, not kept as text: numbers, mostly unique (content-length),
    /// that would only churn the shared texts. `Some(None)`: present but not a number.
    status: Option<Option<u16>>,
    host: Option<ArcStr>,
    forwarded: Option<ArcStr>,
    x_forwarded_host: Option<ArcStr>,
    via: Option<ArcStr>,
    server: Option<ArcStr>,
    content_length: Option<Option<u64>>,
    unknown: u32,
    cut: bool,
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8], max: usize) {
        match name {
            b":status" if self.status.is_none() => {
                self.status = Some(self.number(value, max));
                return;
            }
            b"content-length" if self.content_length.is_none() => {
                self.content_length = Some(self.number(value, max));
                return;
            }
            _ => {}
        }
        let slot = match name {
            b":method" => &mut self.method,
            b":scheme" => &mut self.scheme,
            b":authority" => &mut self.authority,
            b":path" => &mut self.path,
            b"host" => &mut self.host,
            b"forwarded" => &mut self.forwarded,
            b"x-forwarded-host" => &mut self.x_forwarded_host,
            b"via" => &mut self.via,
            b"server" => &mut self.server,
            _ => return,
        };
        if slot.is_none() {
            let mut counts = crate::anomaly::AnomalyCounts::default();
            *slot = Some(super::text(value, max, &mut counts));
            self.cut |= !counts.is_empty();
        }
    }

    /// A numeric field's value; one over the field limit is cut, as a text would be, and
    /// so is not a number.
    fn number<T: std::str::FromStr>(&mut self, value: &[u8], max: usize) -> Option<T> {
        if value.len() > max {
            self.cut = true;
            return None;
        }
        std::str::from_utf8(value).ok()?.parse().ok()
    }

    fn fill_request(self, e: &mut Exchange, at: Timestamp) {
        e.request_seen = true;
        e.request_time = Some(at);
        e.method = self.method;
        e.scheme = self.scheme;
        e.authority = self.authority;
        e.path = self.path;
        e.host = self.host;
        // A block may fill an exchange again (a PUSH_PROMISE promising a stream already
        // known): what it lacks is cleared, as the other fields are.
        let any = self.forwarded.is_some() || self.x_forwarded_host.is_some() || self.via.is_some();
        if any || e.rare.is_made() {
            let r = e.rare_mut();
            r.forwarded = self.forwarded;
            r.x_forwarded_host = self.x_forwarded_host;
            r.via = self.via;
        }
        e.unknown_fields = self.unknown;
    }

    fn fill_response(self, e: &mut Exchange, at: Timestamp) {
        let status = self.status.flatten();
        match status {
            Some(s) if (100..200).contains(&s) => e.add_interim(s),
            Some(s) if e.status.is_none() => {
                e.status = Some(s);
                e.response_time = Some(at);
                e.server = self.server;
                e.content_length = self.content_length.flatten();
                e.response_unknown_fields = self.unknown;
            }
            // Trailers (no :status) or a status we could not decode.
            _ => {
                if e.status.is_none() && e.response_time.is_none() {
                    e.response_time = Some(at);
                    e.response_unknown_fields = self.unknown;
                }
            }
        }
    }
}

/// Whether `b` looks like HTTP/2 frames (a stream seen from its middle, or a server's first
/// bytes): two consecutive plausible frame headers. `None` while too few bytes are at hand.
pub fn looks_like_frames(b: &[u8]) -> Option<bool> {
    let plausible = |h: &[u8]| -> Option<(usize, bool)> {
        let h: &[u8; 9] = h.get(..9)?.try_into().ok()?;
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
        let known = h[3] <= kind::CONTINUATION || h[3] == kind::ALTSVC || h[3] == kind::ORIGIN;
        let stream_ok = h[5] & 0x80 == 0;
        Some((len, known && stream_ok && len <= 1 << 20))
    };
    let (len, ok) = plausible(b)?;
    if !ok {
        return Some(false);
    }
    match b.get(9 + len..) {
        Some(rest) if rest.len() >= 9 => plausible(rest).map(|(_, ok)| ok),
        // One whole plausible frame and nothing after it yet.
        Some(_) if b.len() >= 4096 => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sorted list and the map it becomes answer alike, in any insertion order.
    #[test]
    fn streams_list_becomes_a_map() {
        let mut streams = Streams::default();
        let ids: Vec<u32> = (0..40u32).map(|n| (n * 7919) % 97 * 2 + 1).collect();
        for (n, &id) in ids.iter().enumerate() {
            streams.insert(id, Some(n));
            assert!(matches!(
                (&streams, n < FEW_STREAMS),
                (Streams::Few(_), true) | (Streams::Many(_), false)
            ));
            for (m, &seen) in ids.iter().enumerate().take(n + 1) {
                assert_eq!(streams.get(seen), Some(Some(m)));
            }
            assert_eq!(streams.get(0), None);
        }
        streams.insert(ids[3], None);
        assert_eq!(streams.get(ids[3]), Some(None));
        let mut few = Streams::default();
        few.insert(5, Some(1));
        few.insert(3, Some(0));
        few.insert(5, None);
        let Streams::Few(v) = &few else {
            panic!("a short list")
        };
        let kept: Vec<_> = v.iter().map(|&(s, i)| (s, i.get())).collect();
        assert_eq!(kept, [(3, Some(0)), (5, None)]);
        // The largest position a slot holds, and one past it, which it cannot.
        let last = u32::MAX as usize - 1;
        assert_eq!(Slot::new(Some(last)).get(), Some(last));
        assert_eq!(Slot::new(Some(last + 1)).get(), None);
    }
}
