//! The spill codec: a [`ConnectionRecord`] as bytes, and back.
//!
//! Contract: [`put_record`] appends one record's encoding to a buffer; [`take_record`] reads
//! one record from the front of a slice and moves the slice past it. The record read back
//! serializes (the JSON report) and prints (`Debug`) exactly as the one written: every
//! field, private ones included, and a rare box ([`RareBox`]) that was never made comes back
//! unmade. Values shared in memory (interned [`ArcStr`] texts, a certificate's names, a
//! ClientHello's offered lists) come back as copies of their own; sharing never shows in a
//! report. Why: to keep memory flat in a capture's size, finished records go to a temporary
//! file and are read back when the report is written.
//!
//! Format: integers are LEB128 varints (signed ones zigzagged); an `Option` or an enum is a
//! tag byte and its fields; a list or a text is its length, then its elements (texts as
//! UTF-8). The bools of a struct share one flags byte. Times after a record's `first_seen`
//! are written as their distance from it: a connection lasts seconds, and nanoseconds since
//! 1970 take 9 bytes. There is no format version: the file never outlives the process that
//! wrote it, so its reader is always the same build as its writer.
//!
//! The bytes are our own, but decoding treats them as hostile all the same (a disk can
//! fail): it never panics, checks a length against the bytes left before it allocates (every
//! element takes at least one byte; lists are made room for a bounded number at a time),
//! loops only over what it has read, and follows tunnels inside tunnels at most
//! [`MAX_DEPTH`] deep. An error leaves the input where it was.
//!
//! Hard to forget a field: each struct's `put` destructures it without `..`, and its `take`
//! builds it with a struct literal, so a field added to a type fails to compile here until
//! the codec carries it. Three types keep fields private, where that cannot work:
//! [`Exchange`] and [`TlsInfo`] (their rare boxes, reached through accessors made for this
//! codec) and [`Labels`] (written as its slice). For these the test
//! `private_structs_have_only_the_fields_the_codec_knows` lists their fields as `Debug`
//! shows them. Each type's `put` and `take` are next to each other, in the same order.

use super::{ConnectionRecord, TunnelRecord};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::capture::Origin;
use crate::flow::{Close, ConnId, Direction, DirectionStats, Orientation};
use crate::intern::ArcStr;
use crate::proto::control::{ControlInfo, Dialect, Reply};
use crate::proto::http::{Exchange, Goaway, Http2Info, HttpVersion, Pairing, Rare, Reset};
use crate::proto::tls::hello::{CertificateNames, EchOffer, Sni};
use crate::proto::tls::session::{DirectionInfo, Offered, RareTls, TlsInfo};
use crate::proto::tls::{CipherSuite, ProtocolName, TlsVersion};
use crate::proto::AppProtocol;
use crate::rare::RareBox;
use crate::wire::tunnel::{Labels, Layer, Outer};
use crate::Timestamp;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroU32;
use std::sync::Arc;

/// CONNECT tunnels inside tunnels read back. The analysis follows two
/// (`proto::app::MAX_TUNNEL_DEPTH`); this bounds only the recursion on a damaged file.
const MAX_DEPTH: u8 = 16;

/// Bytes of room a list is given before its elements are read; past that it grows as they
/// come, so a damaged length cannot make a large allocation from a few bytes.
const PREALLOCATE_BYTES: usize = 64 * 1024;

/// What was wrong with bytes that [`take_record`] could not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodecError {
    /// The input ends inside a value.
    #[error("spilled record cut short: {needed} bytes needed, {left} left")]
    Truncated { needed: u64, left: usize },
    /// A list claims more elements than there are bytes left (each takes one at least).
    #[error("spilled record: {what} of {len} elements in {left} bytes")]
    LengthTooLarge {
        what: &'static str,
        len: u64,
        left: usize,
    },
    /// An enum's or an `Option`'s tag, or a flags byte, that the writer never writes.
    #[error("spilled record: {tag} is no tag of {what}")]
    BadTag { what: &'static str, tag: u64 },
    /// A varint of more than 64 bits.
    #[error("spilled record: varint longer than 64 bits")]
    BadVarint,
    /// An integer too large for its field.
    #[error("spilled record: {value} too large for {what}")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("spilled record: {what} is not UTF-8")]
    BadUtf8 { what: &'static str },
    /// A value its type never holds (a zero count, an MPLS stack too deep, ...).
    #[error("spilled record: invalid {what}")]
    Invalid { what: &'static str },
    #[error("spilled record: tunnels nested deeper than {max}")]
    TooDeep { max: u8 },
}

/// Appends the encoding of `r` to `out`.
pub(crate) fn put_record(r: &ConnectionRecord, out: &mut Vec<u8>) {
    let mut w = Writer { out, base: 0 };
    r.put(&mut w);
}

/// Reads one record from the front of `input` and advances `input` past it; on an error,
/// `input` is left as it was.
pub(crate) fn take_record(input: &mut &[u8]) -> Result<ConnectionRecord, CodecError> {
    let mut r = Reader {
        input,
        depth: 0,
        base: 0,
    };
    let record = ConnectionRecord::take(&mut r)?;
    *input = r.input;
    Ok(record)
}

// ---------------------------------------------------------------------------------------
// Writer, reader and the two traits

struct Writer<'o> {
    out: &'o mut Vec<u8>,
    /// What times are written relative to: the record's `first_seen`, once it is written.
    base: i64,
}

impl Writer<'_> {
    fn put<T: Put + ?Sized>(&mut self, v: &T) {
        v.put(self);
    }

    fn byte(&mut self, b: u8) {
        self.out.push(b);
    }

    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// Zigzag: small magnitudes of either sign take few bytes.
    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// Up to 8 bools in one byte, the first in the lowest bit.
    fn flags<const N: usize>(&mut self, flags: [bool; N]) {
        const { assert!(N <= 8) };
        let byte = flags
            .iter()
            .enumerate()
            .fold(0u8, |b, (i, &f)| b | (u8::from(f) << i));
        self.byte(byte);
    }
}

struct Reader<'i> {
    input: &'i [u8],
    /// Tunnel records being read, one inside the other.
    depth: u8,
    /// As [`Writer::base`].
    base: i64,
}

impl<'i> Reader<'i> {
    fn take<T: Take>(&mut self) -> Result<T, CodecError> {
        T::take(self)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let (&b, rest) = self
            .input
            .split_first()
            .ok_or(CodecError::Truncated { needed: 1, left: 0 })?;
        self.input = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: u64) -> Result<&'i [u8], CodecError> {
        let left = self.input.len();
        let cut = usize::try_from(n)
            .ok()
            .and_then(|n| self.input.split_at_checked(n));
        let (head, rest) = cut.ok_or(CodecError::Truncated { needed: n, left })?;
        self.input = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        // Ten bytes at most; the tenth may hold only the 64th bit.
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(CodecError::BadVarint);
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::BadVarint)
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        let u = self.u64()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    /// A count of elements of `what`, each of which takes one byte at least.
    fn count(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let len = self.u64()?;
        let left = self.input.len();
        match usize::try_from(len) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(CodecError::LengthTooLarge { what, len, left }),
        }
    }

    fn str(&mut self, what: &'static str) -> Result<&'i str, CodecError> {
        let len = self.u64()?;
        std::str::from_utf8(self.bytes(len)?).map_err(|_| CodecError::BadUtf8 { what })
    }

    fn flags<const N: usize>(&mut self, what: &'static str) -> Result<[bool; N], CodecError> {
        const { assert!(N <= 8) };
        let byte = self.byte()?;
        if u16::from(byte) >> N != 0 {
            return Err(CodecError::BadTag {
                what,
                tag: byte.into(),
            });
        }
        Ok(std::array::from_fn(|i| byte >> i & 1 == 1))
    }

    fn narrow<T: TryFrom<u64>>(&mut self, what: &'static str) -> Result<T, CodecError> {
        let value = self.u64()?;
        T::try_from(value).map_err(|_| CodecError::OutOfRange { what, value })
    }
}

fn bad_tag<T>(what: &'static str, tag: u8) -> Result<T, CodecError> {
    Err(CodecError::BadTag {
        what,
        tag: tag.into(),
    })
}

/// Writes a value; [`Take`] reads it back.
trait Put {
    fn put(&self, w: &mut Writer<'_>);
}

trait Take: Sized {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError>;
}

// ---------------------------------------------------------------------------------------
// Primitives and containers

impl Put for u8 {
    fn put(&self, w: &mut Writer<'_>) {
        w.byte(*self);
    }
}

impl Take for u8 {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.byte()
    }
}

macro_rules! varint {
    ($($t:ty),*) => {$(
        impl Put for $t {
            fn put(&self, w: &mut Writer<'_>) {
                w.u64(*self as u64);
            }
        }

        impl Take for $t {
            fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                r.narrow(stringify!($t))
            }
        }
    )*};
}
varint!(u16, u32, u64, usize);

impl Put for bool {
    fn put(&self, w: &mut Writer<'_>) {
        w.byte(u8::from(*self));
    }
}

impl Take for bool {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            t => bad_tag("bool", t),
        }
    }
}

impl<T: Put> Put for Option<T> {
    fn put(&self, w: &mut Writer<'_>) {
        match self {
            None => w.byte(0),
            Some(v) => {
                w.byte(1);
                w.put(v);
            }
        }
    }
}

impl<T: Take> Take for Option<T> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.byte()? {
            0 => Ok(None),
            1 => Ok(Some(r.take()?)),
            t => bad_tag("option", t),
        }
    }
}

impl<T: Put> Put for [T] {
    fn put(&self, w: &mut Writer<'_>) {
        w.len(self.len());
        for v in self {
            w.put(v);
        }
    }
}

impl<T: Put> Put for Vec<T> {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(self.as_slice());
    }
}

impl<T: Take> Take for Vec<T> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n = r.count("list")?;
        let room = PREALLOCATE_BYTES / std::mem::size_of::<T>().max(1);
        let mut v = Vec::with_capacity(n.min(room));
        for _ in 0..n {
            v.push(r.take()?);
        }
        Ok(v)
    }
}

impl Put for str {
    fn put(&self, w: &mut Writer<'_>) {
        w.len(self.len());
        w.out.extend_from_slice(self.as_bytes());
    }
}

impl Put for String {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(self.as_str());
    }
}

impl Take for String {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(r.str("text")?.to_owned())
    }
}

impl Take for Box<str> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(r.str("text")?.into())
    }
}

impl Put for ArcStr {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(self.as_str());
    }
}

/// A copy of its own, not the thread's interned one: sharing does not show.
impl Take for ArcStr {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ArcStr::from(r.str("text")?))
    }
}

impl<T: Put + ?Sized> Put for Box<T> {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(&**self);
    }
}

impl<T: Take> Take for Box<T> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Box::new(r.take()?))
    }
}

impl<T: Put + ?Sized> Put for Arc<T> {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(&**self);
    }
}

impl<T: Take> Take for Arc<T> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Arc::new(r.take()?))
    }
}

/// A certificate's names: a list of its own, not shared with other connections.
impl Take for Arc<[String]> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(r.take::<Vec<String>>()?.into())
    }
}

/// An ALPN name ([`ProtocolName`], the only `Cow<str>` of a record) is made as the TLS
/// parser makes it: a well-known name borrows the static one again.
impl Put for Cow<'_, str> {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(&**self);
    }
}

impl Take for ProtocolName {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(crate::proto::tls::protocol_name(
            r.str("ALPN name")?.as_bytes(),
        ))
    }
}

/// Made or not, then what it holds when made: a box that was never made stays so.
impl<T: crate::rare::Rare + Put, P: std::ops::Deref<Target = T>> Put for RareBox<T, P> {
    fn put(&self, w: &mut Writer<'_>) {
        w.flags([self.is_made()]);
        if self.is_made() {
            w.put(self.read());
        }
    }
}

impl<T: crate::rare::Rare + Take> Take for RareBox<T> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut b = RareBox::default();
        let [made] = r.flags("rare box")?;
        if made {
            *b.write() = r.take()?;
        }
        Ok(b)
    }
}

impl<T: crate::rare::Rare + Take> Take for RareBox<T, Arc<T>> {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let [made] = r.flags("rare box")?;
        Ok(if made {
            RareBox::shared(Arc::new(r.take()?))
        } else {
            RareBox::default()
        })
    }
}

/// Relative to the record's `first_seen` (see [`Writer::base`]); wrapping, so any two
/// times have a distance.
impl Put for Timestamp {
    fn put(&self, w: &mut Writer<'_>) {
        w.i64(self.0.wrapping_sub(w.base));
    }
}

impl Take for Timestamp {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Timestamp(r.i64()?.wrapping_add(r.base)))
    }
}

impl Put for IpAddr {
    fn put(&self, w: &mut Writer<'_>) {
        match self {
            IpAddr::V4(a) => {
                w.byte(4);
                w.out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                w.byte(6);
                w.out.extend_from_slice(&a.octets());
            }
        }
    }
}

impl Take for IpAddr {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.byte()? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(array::<4>(r)?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(array::<16>(r)?))),
            t => bad_tag("IP address", t),
        }
    }
}

fn array<const N: usize>(r: &mut Reader<'_>) -> Result<[u8; N], CodecError> {
    let bytes = r.bytes(N as u64)?;
    bytes.try_into().map_err(|_| CodecError::Truncated {
        needed: N as u64,
        left: bytes.len(),
    })
}

/// The port in two bytes (most are past a varint's two); IPv6's flow label and scope id
/// too, which `Debug` and the report show.
impl Put for SocketAddr {
    fn put(&self, w: &mut Writer<'_>) {
        match self {
            SocketAddr::V4(a) => {
                w.byte(4);
                w.out.extend_from_slice(&a.ip().octets());
                w.out.extend_from_slice(&a.port().to_be_bytes());
            }
            SocketAddr::V6(a) => {
                w.byte(6);
                w.out.extend_from_slice(&a.ip().octets());
                w.out.extend_from_slice(&a.port().to_be_bytes());
                w.put(&a.flowinfo());
                w.put(&a.scope_id());
            }
        }
    }
}

impl Take for SocketAddr {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.byte()? {
            4 => {
                let ip = Ipv4Addr::from(array::<4>(r)?);
                let port = u16::from_be_bytes(array(r)?);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
            }
            6 => {
                let ip = Ipv6Addr::from(array::<16>(r)?);
                let port = u16::from_be_bytes(array(r)?);
                let (flowinfo, scope_id) = (r.take()?, r.take()?);
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    ip, port, flowinfo, scope_id,
                )))
            }
            t => bad_tag("socket address", t),
        }
    }
}

/// Fieldless enums as a tag byte; the `match` in `put` is exhaustive, so a new variant
/// fails to compile until it has a tag.
macro_rules! tags {
    ($t:ty, $what:literal, { $($tag:literal => $v:path,)* }) => {
        impl Put for $t {
            fn put(&self, w: &mut Writer<'_>) {
                w.byte(match self { $($v => $tag,)* });
            }
        }

        impl Take for $t {
            fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                match r.byte()? {
                    $($tag => Ok($v),)*
                    t => bad_tag($what, t),
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// The connection record

impl Put for ConnectionRecord {
    fn put(&self, w: &mut Writer<'_>) {
        let ConnectionRecord {
            id,
            client,
            server,
            encapsulation,
            orientation,
            mid_stream,
            first_seen,
            last_seen,
            first_packet,
            last_packet,
            source,
            close,
            client_to_server,
            server_to_client,
            protocol,
            tls,
            requests,
            requests_dropped,
            http2,
            control,
            tunnel,
            anomalies,
        } = self;
        // First, as it is (the base is 0 at a record's start); the times after it are
        // written relative to it.
        w.put(first_seen);
        w.base = first_seen.0;
        w.put(last_seen);
        w.put(id);
        w.put(client);
        w.put(server);
        w.put(encapsulation);
        w.put(orientation);
        w.put(mid_stream);
        w.put(first_packet);
        w.put(last_packet);
        w.put(source);
        w.put(close);
        w.put(client_to_server);
        w.put(server_to_client);
        w.put(protocol);
        w.put(tls);
        w.put(requests);
        w.put(requests_dropped);
        w.put(http2);
        w.put(control);
        w.put(tunnel);
        w.put(anomalies);
    }
}

impl Take for ConnectionRecord {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let first_seen: Timestamp = r.take()?;
        r.base = first_seen.0;
        let last_seen = r.take()?;
        Ok(ConnectionRecord {
            id: r.take()?,
            client: r.take()?,
            server: r.take()?,
            encapsulation: r.take()?,
            orientation: r.take()?,
            mid_stream: r.take()?,
            first_seen,
            last_seen,
            first_packet: r.take()?,
            last_packet: r.take()?,
            source: r.take()?,
            close: r.take()?,
            client_to_server: r.take()?,
            server_to_client: r.take()?,
            protocol: r.take()?,
            tls: r.take()?,
            requests: r.take()?,
            requests_dropped: r.take()?,
            http2: r.take()?,
            control: r.take()?,
            tunnel: r.take()?,
            anomalies: r.take()?,
        })
    }
}

impl Put for TunnelRecord {
    fn put(&self, w: &mut Writer<'_>) {
        let TunnelRecord {
            protocol,
            tls,
            requests,
            http2,
            tunnel,
        } = self;
        w.put(protocol);
        w.put(tls);
        w.put(requests);
        w.put(http2);
        w.put(tunnel);
    }
}

impl Take for TunnelRecord {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        if r.depth >= MAX_DEPTH {
            return Err(CodecError::TooDeep { max: MAX_DEPTH });
        }
        r.depth += 1;
        let t = TunnelRecord {
            protocol: r.take()?,
            tls: r.take()?,
            requests: r.take()?,
            http2: r.take()?,
            tunnel: r.take()?,
        };
        r.depth -= 1;
        Ok(t)
    }
}

impl Put for ConnId {
    fn put(&self, w: &mut Writer<'_>) {
        let ConnId(id) = self;
        w.put(id);
    }
}

impl Take for ConnId {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ConnId(r.take()?))
    }
}

tags!(Orientation, "orientation", {
    0 => Orientation::Syn,
    1 => Orientation::SynAck,
    2 => Orientation::Ports,
    3 => Orientation::FirstPacket,
});

tags!(Close, "close", {
    0 => Close::Fin,
    1 => Close::HalfClosed,
    2 => Close::ResetByClient,
    3 => Close::ResetByServer,
    4 => Close::Open,
    5 => Close::Evicted,
    6 => Close::Replaced,
});

tags!(Direction, "direction", {
    0 => Direction::ClientToServer,
    1 => Direction::ServerToClient,
});

tags!(AppProtocol, "application protocol", {
    0 => AppProtocol::Http1,
    1 => AppProtocol::Http2,
    2 => AppProtocol::Ftp,
    3 => AppProtocol::Smtp,
    4 => AppProtocol::FtpOrSmtp,
    5 => AppProtocol::Unknown,
    6 => AppProtocol::None,
});

impl Put for Origin {
    fn put(&self, w: &mut Writer<'_>) {
        let Origin { input, packet } = self;
        w.put(input);
        w.put(packet);
    }
}

impl Take for Origin {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Origin {
            input: r.take()?,
            packet: r.take()?,
        })
    }
}

impl Put for DirectionStats {
    fn put(&self, w: &mut Writer<'_>) {
        let DirectionStats {
            packets,
            payload_bytes,
            stream_bytes,
            gaps,
            gap_bytes,
            retransmitted_bytes,
            out_of_order_segments,
            keepalives,
            bytes_after_end,
        } = self;
        w.put(packets);
        w.put(payload_bytes);
        w.put(stream_bytes);
        w.put(gaps);
        w.put(gap_bytes);
        w.put(retransmitted_bytes);
        w.put(out_of_order_segments);
        w.put(keepalives);
        w.put(bytes_after_end);
    }
}

impl Take for DirectionStats {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(DirectionStats {
            packets: r.take()?,
            payload_bytes: r.take()?,
            stream_bytes: r.take()?,
            gaps: r.take()?,
            gap_bytes: r.take()?,
            retransmitted_bytes: r.take()?,
            out_of_order_segments: r.take()?,
            keepalives: r.take()?,
            bytes_after_end: r.take()?,
        })
    }
}

/// Counts in the order of [`Anomaly::ALL`], as (position + 1, count) pairs, then 0. No
/// count is ever 0 (counts are only added), so a made map is never empty and none is no
/// pairs; read back, positions must rise, which bounds the pairs by the number of names.
impl Put for AnomalyCounts {
    fn put(&self, w: &mut Writer<'_>) {
        if !self.is_empty() {
            for (i, &a) in Anomaly::ALL.iter().enumerate() {
                let n = self.get(a);
                if n > 0 {
                    w.len(i + 1);
                    w.u64(n);
                }
            }
        }
        w.byte(0);
    }
}

impl Take for AnomalyCounts {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let mut counts = AnomalyCounts::default();
        let mut next = 0;
        loop {
            let at: usize = r.narrow("anomaly")?;
            let Some(i) = at.checked_sub(1) else {
                return Ok(counts);
            };
            let Some(&a) = Anomaly::ALL.get(i).filter(|_| i >= next) else {
                return Err(CodecError::Invalid { what: "anomaly" });
            };
            match r.u64()? {
                0 => {
                    return Err(CodecError::Invalid {
                        what: "anomaly count",
                    })
                }
                n => counts.add_n(a, n),
            }
            next = i + 1;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encapsulation

impl Put for Layer {
    fn put(&self, w: &mut Writer<'_>) {
        match self {
            Layer::Vxlan { vni, outer } => {
                w.byte(0);
                w.put(vni);
                w.put(outer);
            }
            Layer::Geneve { vni, outer } => {
                w.byte(1);
                w.put(vni);
                w.put(outer);
            }
            Layer::Gre { key, outer } => {
                w.byte(2);
                w.put(key);
                w.put(outer);
            }
            Layer::Erspan {
                erspan_type,
                session,
                outer,
            } => {
                w.byte(3);
                w.put(erspan_type);
                w.put(session);
                w.put(outer);
            }
            Layer::IpInIp { outer } => {
                w.byte(4);
                w.put(outer);
            }
            Layer::Mpls { labels } => {
                w.byte(5);
                w.put(labels);
            }
            Layer::Pppoe { session } => {
                w.byte(6);
                w.put(session);
            }
        }
    }
}

impl Take for Layer {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.byte()? {
            0 => Layer::Vxlan {
                vni: r.take()?,
                outer: r.take()?,
            },
            1 => Layer::Geneve {
                vni: r.take()?,
                outer: r.take()?,
            },
            2 => Layer::Gre {
                key: r.take()?,
                outer: r.take()?,
            },
            3 => Layer::Erspan {
                erspan_type: r.take()?,
                session: r.take()?,
                outer: r.take()?,
            },
            4 => Layer::IpInIp { outer: r.take()? },
            5 => Layer::Mpls { labels: r.take()? },
            6 => Layer::Pppoe { session: r.take()? },
            t => return bad_tag("encapsulation layer", t),
        })
    }
}

impl Put for Outer {
    fn put(&self, w: &mut Writer<'_>) {
        let Outer { src, dst } = self;
        w.put(src);
        w.put(dst);
    }
}

impl Take for Outer {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Outer {
            src: r.take()?,
            dst: r.take()?,
        })
    }
}

/// Its fields are private: the stack as a list, the slots past it being 0 (as
/// [`Labels::from_slice`] and the parser's `push` leave them).
impl Put for Labels {
    fn put(&self, w: &mut Writer<'_>) {
        w.put(self.as_slice());
    }
}

impl Take for Labels {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let labels: Vec<u32> = r.take()?;
        Labels::from_slice(&labels).ok_or(CodecError::Invalid {
            what: "MPLS label stack",
        })
    }
}

// ---------------------------------------------------------------------------------------
// TLS

impl Put for TlsInfo {
    fn put(&self, w: &mut Writer<'_>) {
        // `..` stands for the private `offered` and `rare`, written from `boxes()`.
        let TlsInfo {
            sni,
            alpn,
            version,
            cipher,
            ech,
            hello_retry_request,
            resumption_offered,
            resumed,
            server_names,
            certificate,
            certificate_compressed,
            decryption,
            decrypted,
            client_to_server,
            server_to_client,
            ..
        } = self;
        let (offered, rare) = self.boxes();
        w.flags([
            *ech,
            *hello_retry_request,
            *resumption_offered,
            *resumed,
            *certificate_compressed,
            *decrypted,
        ]);
        w.put(sni);
        w.put(offered);
        w.put(alpn);
        w.put(version);
        w.put(cipher);
        w.put(server_names);
        w.put(certificate);
        w.put(decryption);
        w.put(client_to_server);
        w.put(server_to_client);
        w.put(rare);
    }
}

impl Take for TlsInfo {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        // Field by field: a struct literal cannot name the private `offered` and `rare`.
        let mut t = TlsInfo::default();
        [
            t.ech,
            t.hello_retry_request,
            t.resumption_offered,
            t.resumed,
            t.certificate_compressed,
            t.decrypted,
        ] = r.flags("TLS flags")?;
        t.sni = r.take()?;
        let offered = r.take()?;
        t.alpn = r.take()?;
        t.version = r.take()?;
        t.cipher = r.take()?;
        t.server_names = r.take()?;
        t.certificate = r.take()?;
        t.decryption = r.take()?;
        t.client_to_server = r.take()?;
        t.server_to_client = r.take()?;
        let rare = r.take()?;
        t.set_boxes(offered, rare);
        Ok(t)
    }
}

impl Put for Offered {
    fn put(&self, w: &mut Writer<'_>) {
        let Offered {
            sni,
            alpn,
            versions,
            key_share_groups,
        } = self;
        w.put(sni);
        w.put(alpn);
        w.put(versions);
        w.put(key_share_groups);
    }
}

impl Take for Offered {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Offered {
            sni: r.take()?,
            alpn: r.take()?,
            versions: r.take()?,
            key_share_groups: r.take()?,
        })
    }
}

impl Put for RareTls {
    fn put(&self, w: &mut Writer<'_>) {
        let RareTls {
            ech_detail,
            early_data,
            alerts,
        } = self;
        w.put(ech_detail);
        w.put(early_data);
        w.put(alerts);
    }
}

impl Take for RareTls {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(RareTls {
            ech_detail: r.take()?,
            early_data: r.take()?,
            alerts: r.take()?,
        })
    }
}

impl Put for DirectionInfo {
    fn put(&self, w: &mut Writer<'_>) {
        let DirectionInfo {
            records,
            application_bytes,
            decrypted_bytes,
            key_updates,
            stopped,
        } = self;
        w.put(records);
        w.put(application_bytes);
        w.put(decrypted_bytes);
        w.put(key_updates);
        w.put(stopped);
    }
}

impl Take for DirectionInfo {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(DirectionInfo {
            records: r.take()?,
            application_bytes: r.take()?,
            decrypted_bytes: r.take()?,
            key_updates: r.take()?,
            stopped: r.take()?,
        })
    }
}

impl Put for Sni {
    fn put(&self, w: &mut Writer<'_>) {
        let Sni {
            present,
            names,
            ip_literal,
            malformed,
        } = self;
        w.flags([*present, *ip_literal, *malformed]);
        w.put(names);
    }
}

impl Take for Sni {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let [present, ip_literal, malformed] = r.flags("SNI flags")?;
        Ok(Sni {
            present,
            names: r.take()?,
            ip_literal,
            malformed,
        })
    }
}

impl Put for EchOffer {
    fn put(&self, w: &mut Writer<'_>) {
        let EchOffer {
            outer,
            kdf_id,
            aead_id,
            config_id,
            enc_len,
            payload_len,
        } = self;
        w.put(outer);
        w.put(kdf_id);
        w.put(aead_id);
        w.put(config_id);
        w.put(enc_len);
        w.put(payload_len);
    }
}

impl Take for EchOffer {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(EchOffer {
            outer: r.take()?,
            kdf_id: r.take()?,
            aead_id: r.take()?,
            config_id: r.take()?,
            enc_len: r.take()?,
            payload_len: r.take()?,
        })
    }
}

impl Put for CertificateNames {
    fn put(&self, w: &mut Writer<'_>) {
        let CertificateNames {
            subject_cn,
            san_dns,
            san_ip,
            subject,
            issuer,
            not_before,
            not_after,
            chain_len,
            trailing_data,
            lists_capped,
        } = self;
        w.flags([*trailing_data, *lists_capped]);
        w.put(subject_cn);
        w.put(san_dns);
        w.put(san_ip);
        w.put(subject);
        w.put(issuer);
        w.put(not_before);
        w.put(not_after);
        w.put(chain_len);
    }
}

impl Take for CertificateNames {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let [trailing_data, lists_capped] = r.flags("certificate flags")?;
        Ok(CertificateNames {
            subject_cn: r.take()?,
            san_dns: r.take()?,
            san_ip: r.take()?,
            subject: r.take()?,
            issuer: r.take()?,
            not_before: r.take()?,
            not_after: r.take()?,
            chain_len: r.take()?,
            trailing_data,
            lists_capped,
        })
    }
}

impl Put for TlsVersion {
    fn put(&self, w: &mut Writer<'_>) {
        let TlsVersion(v) = self;
        w.put(v);
    }
}

impl Take for TlsVersion {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(TlsVersion(r.take()?))
    }
}

impl Put for CipherSuite {
    fn put(&self, w: &mut Writer<'_>) {
        let CipherSuite(v) = self;
        w.put(v);
    }
}

impl Take for CipherSuite {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CipherSuite(r.take()?))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

impl Put for Exchange {
    fn put(&self, w: &mut Writer<'_>) {
        // `..` stands for the private `rare`, written from `rare_box()`.
        let Exchange {
            stream_id,
            version,
            request_seen,
            request_time,
            method,
            scheme,
            authority,
            host,
            path,
            unknown_fields,
            status,
            reason,
            response_time,
            server,
            content_length,
            response_unknown_fields,
            pushed,
            pairing,
            first_party,
            ..
        } = self;
        w.flags([*request_seen, *pushed]);
        // Never 0 (the connection's own stream), so 0 can mean none.
        w.put(&stream_id.map_or(0, NonZeroU32::get));
        w.put(version);
        w.put(request_time);
        w.put(method);
        w.put(scheme);
        w.put(authority);
        w.put(host);
        w.put(path);
        w.put(unknown_fields);
        w.put(status);
        w.put(reason);
        w.put(response_time);
        w.put(server);
        w.put(content_length);
        w.put(response_unknown_fields);
        w.put(pairing);
        w.put(first_party);
        w.put(self.rare_box());
    }
}

impl Take for Exchange {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        // Field by field: a struct literal cannot name the private `rare`.
        let mut e = Exchange::default();
        [e.request_seen, e.pushed] = r.flags("exchange flags")?;
        e.stream_id = NonZeroU32::new(r.take()?);
        e.version = r.take()?;
        e.request_time = r.take()?;
        e.method = r.take()?;
        e.scheme = r.take()?;
        e.authority = r.take()?;
        e.host = r.take()?;
        e.path = r.take()?;
        e.unknown_fields = r.take()?;
        e.status = r.take()?;
        e.reason = r.take()?;
        e.response_time = r.take()?;
        e.server = r.take()?;
        e.content_length = r.take()?;
        e.response_unknown_fields = r.take()?;
        e.pairing = r.take()?;
        e.first_party = r.take()?;
        e.set_rare_box(r.take()?);
        Ok(e)
    }
}

impl Put for Rare {
    fn put(&self, w: &mut Writer<'_>) {
        let Rare {
            forwarded,
            x_forwarded_host,
            via,
            interim,
            reset,
            upgraded_to,
        } = self;
        w.put(forwarded);
        w.put(x_forwarded_host);
        w.put(via);
        w.put(interim);
        w.put(reset);
        w.put(upgraded_to);
    }
}

impl Take for Rare {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Rare {
            forwarded: r.take()?,
            x_forwarded_host: r.take()?,
            via: r.take()?,
            interim: r.take()?,
            reset: r.take()?,
            upgraded_to: r.take()?,
        })
    }
}

impl Put for Reset {
    fn put(&self, w: &mut Writer<'_>) {
        let Reset { by, error } = self;
        w.put(by);
        w.put(error);
    }
}

impl Take for Reset {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Reset {
            by: r.take()?,
            error: r.take()?,
        })
    }
}

tags!(HttpVersion, "HTTP version", {
    0 => HttpVersion::Http10,
    1 => HttpVersion::Http11,
    2 => HttpVersion::Http2,
});

tags!(Pairing, "pairing", {
    0 => Pairing::Exact,
    1 => Pairing::Inferred,
});

impl Put for Http2Info {
    fn put(&self, w: &mut Writer<'_>) {
        let Http2Info {
            preface_seen,
            origin_set,
            alt_svc,
            goaway,
            client_header_table_size,
            server_header_table_size,
        } = self;
        w.put(preface_seen);
        w.put(origin_set);
        w.put(alt_svc);
        w.put(goaway);
        w.put(client_header_table_size);
        w.put(server_header_table_size);
    }
}

impl Take for Http2Info {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Http2Info {
            preface_seen: r.take()?,
            origin_set: r.take()?,
            alt_svc: r.take()?,
            goaway: r.take()?,
            client_header_table_size: r.take()?,
            server_header_table_size: r.take()?,
        })
    }
}

impl Put for Goaway {
    fn put(&self, w: &mut Writer<'_>) {
        let Goaway {
            by,
            time,
            last_stream_id,
            error,
            debug,
        } = self;
        w.put(by);
        w.put(time);
        w.put(last_stream_id);
        w.put(error);
        w.put(debug);
    }
}

impl Take for Goaway {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Goaway {
            by: r.take()?,
            time: r.take()?,
            last_stream_id: r.take()?,
            error: r.take()?,
            debug: r.take()?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// FTP and SMTP

impl Put for ControlInfo {
    fn put(&self, w: &mut Writer<'_>) {
        let ControlInfo {
            dialect,
            dialect_from,
            commands,
            replies,
            replies_dropped,
            starttls,
        } = self;
        w.put(dialect);
        put_dialect_from(*dialect_from, w);
        w.put(commands);
        w.put(replies);
        w.put(replies_dropped);
        w.put(starttls);
    }
}

impl Take for ControlInfo {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ControlInfo {
            dialect: r.take()?,
            dialect_from: take_dialect_from(r)?,
            commands: r.take()?,
            replies: r.take()?,
            replies_dropped: r.take()?,
            starttls: r.take()?,
        })
    }
}

/// What told a control connection's dialect: the values `proto::control` (`Control::finish`)
/// and the analysis (`settle_dialects`) set, by their position here plus one (0 is none).
const DIALECT_FROM: [&str; 4] = ["commands", "enhanced_status", "greeting", "same_server"];

/// A value missing from [`DIALECT_FROM`] is a bug here: written as its text, it fails to
/// read back (a `&'static str` cannot be made from the file without leaking it).
fn put_dialect_from(from: Option<&'static str>, w: &mut Writer<'_>) {
    let Some(from) = from else {
        w.byte(0);
        return;
    };
    match DIALECT_FROM.iter().position(|&known| known == from) {
        Some(i) => w.len(i + 1),
        None => {
            debug_assert!(false, "dialect source {from:?} missing from DIALECT_FROM");
            w.len(DIALECT_FROM.len() + 1);
            w.put(from);
        }
    }
}

fn take_dialect_from(r: &mut Reader<'_>) -> Result<Option<&'static str>, CodecError> {
    let tag: usize = r.narrow("dialect source")?;
    match tag.checked_sub(1) {
        None => Ok(None),
        Some(i) => match DIALECT_FROM.get(i) {
            Some(&from) => Ok(Some(from)),
            None => Err(CodecError::Invalid {
                what: "dialect source",
            }),
        },
    }
}

tags!(Dialect, "dialect", {
    0 => Dialect::Ftp,
    1 => Dialect::Smtp,
});

impl Put for Reply {
    fn put(&self, w: &mut Writer<'_>) {
        let Reply {
            time,
            code,
            text,
            lines,
            command,
        } = self;
        w.put(time);
        w.put(code);
        w.put(text);
        w.put(lines);
        w.put(command);
    }
}

impl Take for Reply {
    fn take(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Reply {
            time: r.take()?,
            code: r.take()?,
            text: r.take()?,
            lines: r.take()?,
            command: r.take()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::protocol_name;
    use std::path::{Path, PathBuf};

    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn encode(r: &ConnectionRecord) -> Vec<u8> {
        let mut out = Vec::new();
        put_record(r, &mut out);
        out
    }

    /// Encodes and decodes `r`, checks the copy reads as `r`, and returns the encoding.
    /// `Debug` shows everything, private fields and whether a rare box was made included.
    fn assert_round_trip(r: &ConnectionRecord, what: &str) -> Vec<u8> {
        let bytes = encode(r);
        let mut input = bytes.as_slice();
        let back = take_record(&mut input).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(input.is_empty(), "{what}: {} bytes left over", input.len());
        assert_eq!(json(&back), json(r), "{what}");
        assert_eq!(format!("{back:?}"), format!("{r:?}"), "{what}");
        bytes
    }

    /// Every prefix of `bytes` (one record's encoding) fails to read and leaves the input
    /// where it was.
    fn assert_prefixes_fail(bytes: &[u8], what: &str) {
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            let mut input = prefix;
            assert!(
                take_record(&mut input).is_err(),
                "{what}: a prefix of {cut} of {} bytes read",
                bytes.len()
            );
            assert_eq!(input.len(), prefix.len(), "{what}: input moved on an error");
        }
    }

    #[test]
    fn every_sample_record_round_trips() {
        // What the samples exercise, so that a sample set without them shows here.
        let (mut tls, mut requests, mut http2, mut control, mut tunnels, mut encapsulated) =
            (0, 0, 0, 0, 0, 0);
        for path in crate::samples::captures() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let report = crate::samples::report(&path);
            assert!(!report.connections.is_empty(), "{name}: no connections");
            let mut all = Vec::new();
            let mut longest = Vec::new();
            for r in &report.connections {
                let bytes = assert_round_trip(r, &format!("{name} connection {}", r.id.0));
                all.extend_from_slice(&bytes);
                if bytes.len() > longest.len() {
                    longest = bytes;
                }
                tls += usize::from(r.tls.is_some());
                requests += r.requests.len();
                http2 += usize::from(r.http2.is_some());
                control += usize::from(r.control.is_some());
                tunnels += usize::from(r.tunnel.is_some());
                encapsulated += usize::from(!r.encapsulation.is_empty());
            }
            // One after the other in one buffer, as the spill file holds them.
            let mut input = all.as_slice();
            for r in &report.connections {
                let back = take_record(&mut input).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(json(&back), json(r), "{name} in sequence");
            }
            assert!(input.is_empty(), "{name}: {} bytes left over", input.len());
            assert_prefixes_fail(&longest, &name);
        }
        assert!(
            tls > 0 && requests > 0 && http2 > 0,
            "samples lack TLS or HTTP"
        );
        assert!(
            control > 0 && tunnels > 0 && encapsulated > 0,
            "samples lack kinds"
        );
    }

    fn v6(ip: &str, port: u16, flowinfo: u32, scope_id: u32) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(
            ip.parse().unwrap(),
            port,
            flowinfo,
            scope_id,
        ))
    }

    fn outer() -> Outer {
        Outer {
            src: "192.0.2.1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
        }
    }

    fn text(s: &str) -> Option<ArcStr> {
        Some(ArcStr::from(s))
    }

    /// An exchange with every field set, rare ones included.
    fn full_exchange(stream: u32, at: i64) -> Exchange {
        let mut e = Exchange::default();
        e.stream_id = NonZeroU32::new(stream);
        e.version = Some(HttpVersion::Http2);
        e.request_seen = true;
        e.request_time = Some(Timestamp(at));
        e.method = text("CONNECT");
        e.scheme = text("https");
        e.authority = text("a.example:443");
        e.host = text("b.example");
        e.path = text("/ünïcode?q=1");
        e.unknown_fields = 2;
        e.status = Some(421);
        e.reason = text("Misdirected Request");
        e.response_time = Some(Timestamp(at - 5));
        e.server = text("nginx");
        e.content_length = Some(u64::MAX);
        e.response_unknown_fields = u32::MAX;
        e.pushed = true;
        e.pairing = Pairing::Inferred;
        e.first_party = Some(false);
        let rare = e.rare_mut();
        rare.forwarded = text("for=192.0.2.60;proto=http");
        rare.x_forwarded_host = text("c.example");
        rare.via = text("1.1 proxy");
        rare.interim = vec![100, 103];
        rare.reset = Some(Reset {
            by: Direction::ServerToClient,
            error: "REFUSED_STREAM".into(),
        });
        rare.upgraded_to = text("tunnel");
        e
    }

    /// TLS facts with every field set: ECH offered, alerts, early data, a certificate.
    fn full_tls() -> TlsInfo {
        let mut t = TlsInfo::default();
        t.sni = text("public.example");
        t.alpn = Some(protocol_name(b"h2"));
        t.version = Some(TlsVersion(0x0304));
        t.cipher = Some(CipherSuite(0x1301));
        t.ech = true;
        t.hello_retry_request = true;
        t.resumption_offered = true;
        t.resumed = true;
        t.server_names = Arc::from(vec!["*.example".to_string(), "example".into()]);
        t.certificate = Some(Arc::new(CertificateNames {
            subject_cn: vec!["example".into()],
            san_dns: vec!["*.example".into(), "example".into()],
            san_ip: vec!["192.0.2.1".into()],
            subject: "CN=example".into(),
            issuer: "CN=Test CA,O=Test".into(),
            not_before: "2025-01-01T00:00:00Z".into(),
            not_after: "2026-01-01T00:00:00Z".into(),
            chain_len: 3,
            trailing_data: true,
            lists_capped: true,
        }));
        t.certificate_compressed = true;
        t.decryption = ArcStr::from("failed: bad record mac");
        t.decrypted = true;
        t.client_to_server = DirectionInfo {
            records: 1,
            application_bytes: 2,
            decrypted_bytes: 3,
            key_updates: 4,
            stopped: text("gap"),
        };
        t.server_to_client = DirectionInfo {
            records: u64::MAX,
            ..DirectionInfo::default()
        };
        let offered = Offered {
            sni: Sni {
                present: true,
                names: vec!["public.example".into(), "192.0.2.1".into()],
                ip_literal: true,
                malformed: true,
            },
            alpn: vec![protocol_name(b"h2"), protocol_name(b"custom/\xff")],
            versions: vec![TlsVersion(0x0304), TlsVersion(0x7f1c)],
            key_share_groups: vec![29, 0x11ec],
        };
        let mut rare = RareBox::default();
        *rare.write() = RareTls {
            ech_detail: Some(EchOffer {
                outer: true,
                kdf_id: Some(1),
                aead_id: Some(3),
                config_id: Some(255),
                enc_len: 32,
                payload_len: usize::MAX,
            }),
            early_data: Some("decrypted".into()),
            alerts: vec!["1:0".into(), "2:40".into()],
        };
        t.set_boxes(RareBox::shared(Arc::new(offered)), rare);
        t
    }

    fn full_http2(at: i64) -> Http2Info {
        Http2Info {
            preface_seen: true,
            origin_set: Some(vec!["https://a.example".into(), String::new()]),
            alt_svc: vec!["h3=\":443\"".into()],
            goaway: vec![
                Goaway {
                    by: Direction::ClientToServer,
                    time: Timestamp(at),
                    last_stream_id: 7,
                    error: "NO_ERROR".into(),
                    debug: Some("bye".into()),
                },
                Goaway {
                    by: Direction::ServerToClient,
                    time: Timestamp(i64::MIN),
                    last_stream_id: u32::MAX,
                    error: "0xff".into(),
                    debug: None,
                },
            ],
            client_header_table_size: Some(0),
            server_header_table_size: Some(u32::MAX),
        }
    }

    /// A record that sets every field the types have, the rare and optional ones too.
    fn full_record() -> ConnectionRecord {
        let first = 1_700_000_000_123_456_789;
        let mut r = ConnectionRecord::bare(
            ConnId(u64::MAX),
            v6("2001:db8::1", 40000, 0xabcde, 3),
            "198.51.100.7:443".parse().unwrap(),
        );
        r.encapsulation = vec![
            Layer::Vxlan {
                vni: 0xff_ffff,
                outer: outer(),
            },
            Layer::Geneve {
                vni: 42,
                outer: outer(),
            },
            Layer::Gre {
                key: Some(7),
                outer: outer(),
            },
            Layer::Gre {
                key: None,
                outer: outer(),
            },
            Layer::Erspan {
                erspan_type: 3,
                session: Some(1023),
                outer: outer(),
            },
            Layer::Erspan {
                erspan_type: 1,
                session: None,
                outer: outer(),
            },
            Layer::IpInIp { outer: outer() },
            Layer::Mpls {
                labels: Labels::from_slice(&[16, 17, 0xf_ffff]).unwrap(),
            },
            Layer::Mpls {
                labels: Labels::from_slice(&[1; crate::wire::tunnel::MPLS_LABELS_KEPT]).unwrap(),
            },
            Layer::Pppoe { session: 0xffff },
        ];
        r.orientation = Orientation::FirstPacket;
        r.mid_stream = true;
        r.first_seen = Timestamp(first);
        // Before the first: a distance below zero.
        r.last_seen = Timestamp(first - 1);
        r.first_packet = 1;
        r.last_packet = u64::MAX;
        r.source = Origin {
            input: u32::MAX,
            packet: 12,
        };
        r.close = Close::ResetByServer;
        r.client_to_server = DirectionStats {
            packets: 1,
            payload_bytes: 2,
            stream_bytes: 3,
            gaps: 4,
            gap_bytes: 5,
            retransmitted_bytes: 6,
            out_of_order_segments: 7,
            keepalives: 8,
            bytes_after_end: u64::MAX,
        };
        r.server_to_client.packets = 9;
        r.protocol = AppProtocol::Http2;
        r.tls = Some(Box::new(full_tls()));
        let mut made_but_empty = Exchange::default();
        made_but_empty.rare_mut();
        r.requests = vec![
            full_exchange(1, first + 10),
            Exchange::default(),
            made_but_empty,
            full_exchange(u32::MAX, i64::MAX),
        ];
        r.requests_dropped = 3;
        r.http2 = Some(Box::new(full_http2(first + 20)));
        r.control = Some(Box::new(ControlInfo {
            dialect: Some(Dialect::Smtp),
            dialect_from: Some("same_server"),
            commands: 5,
            replies: vec![
                Reply {
                    time: Timestamp(first + 1),
                    code: 421,
                    text: "4.7.0 try later".into(),
                    lines: 2,
                    command: Some("EHLO".into()),
                },
                Reply {
                    time: Timestamp(0),
                    code: 220,
                    text: String::new(),
                    lines: 1,
                    command: None,
                },
            ],
            replies_dropped: 1,
            starttls: true,
        }));
        let mut tls_made_but_empty = TlsInfo::default();
        tls_made_but_empty.rare_mut();
        r.tunnel = Some(Box::new(TunnelRecord {
            protocol: AppProtocol::Http1,
            tls: Some(Box::new(tls_made_but_empty)),
            requests: vec![full_exchange(0, first + 30)],
            http2: Some(Box::default()),
            tunnel: Some(Box::new(TunnelRecord {
                protocol: AppProtocol::Http2,
                tls: Some(Box::new(full_tls())),
                requests: Vec::new(),
                http2: Some(Box::new(full_http2(first + 40))),
                tunnel: None,
            })),
        }));
        for &a in [
            Anomaly::ALL[0],
            Anomaly::TlsGap,
            *Anomaly::ALL.last().unwrap(),
        ]
        .iter()
        {
            r.anomalies.add_n(a, 3);
        }
        r.anomalies.add_n(Anomaly::HpackInvalid, u64::MAX);
        r
    }

    #[test]
    fn a_record_with_every_field_set_round_trips() {
        let r = full_record();
        let bytes = assert_round_trip(&r, "full record");
        assert_prefixes_fail(&bytes, "full record");
        let back = take_record(&mut bytes.as_slice()).unwrap();
        // Made boxes stay made (even when empty), unmade ones unmade.
        let made: Vec<bool> = back
            .requests
            .iter()
            .map(|e| e.rare_box().is_made())
            .collect();
        assert_eq!(made, [true, false, true, true]);
        let tls = back.tunnel.as_ref().unwrap().tls.as_ref().unwrap();
        assert!(!tls.boxes().0.is_made() && tls.boxes().1.is_made());
        // Well-known ALPN names borrow the static name again.
        let alpn = &back.tls.as_ref().unwrap().offered().alpn;
        assert!(matches!(alpn[0], Cow::Borrowed("h2")));
        assert!(matches!(alpn[1], Cow::Owned(_)));
        // A bare record too.
        let bare = ConnectionRecord::bare(
            ConnId(1),
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
        );
        assert_prefixes_fail(&assert_round_trip(&bare, "bare record"), "bare record");
    }

    #[test]
    fn each_dialect_source_round_trips() {
        for from in DIALECT_FROM.iter().copied().map(Some).chain([None]) {
            let mut r = full_record();
            r.control.as_mut().unwrap().dialect_from = from;
            let back = take_record(&mut encode(&r).as_slice()).unwrap();
            assert_eq!(back.control.unwrap().dialect_from, from);
        }
    }

    /// The values a control connection's `dialect_from` is set to in the code are the ones
    /// [`DIALECT_FROM`] knows: a new one must be added there.
    #[test]
    fn dialect_sources_in_the_code_are_known() {
        let control = include_str!("../proto/control.rs");
        let finish = control
            .split("pub fn finish(")
            .nth(1)
            .and_then(|s| s.split("\n    }\n").next())
            .unwrap();
        let ledger = include_str!("mod.rs");
        let settle: String = ledger
            .lines()
            .filter(|l| l.contains("dialect_from"))
            .collect();
        let mut found = 0;
        for source in [finish, settle.as_str()] {
            for lit in source.split("Some(\"").skip(1) {
                let value = lit.split('"').next().unwrap();
                assert!(
                    DIALECT_FROM.contains(&value),
                    "{value:?} not in DIALECT_FROM"
                );
                found += 1;
            }
        }
        assert!(
            found >= DIALECT_FROM.len(),
            "this test no longer finds them"
        );
    }

    /// The fields of the types whose private fields keep `put` from destructuring them
    /// whole, as their derived `Debug` lists them: a field added to one of them fails here
    /// until the codec carries it and the list names it.
    #[test]
    fn private_structs_have_only_the_fields_the_codec_knows() {
        fn fields(debug: String) -> Vec<String> {
            debug
                .lines()
                .filter_map(|l| l.strip_prefix("    ")?.split_once(": "))
                .map(|(name, _)| name)
                .filter(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .map(str::to_owned)
                .collect()
        }
        let exchange = [
            "stream_id",
            "version",
            "request_seen",
            "request_time",
            "method",
            "scheme",
            "authority",
            "host",
            "path",
            "unknown_fields",
            "status",
            "reason",
            "response_time",
            "server",
            "content_length",
            "response_unknown_fields",
            "pushed",
            "pairing",
            "first_party",
            "rare",
        ];
        assert_eq!(fields(format!("{:#?}", Exchange::default())), exchange);
        let tls = [
            "sni",
            "offered",
            "alpn",
            "version",
            "cipher",
            "ech",
            "hello_retry_request",
            "resumption_offered",
            "resumed",
            "server_names",
            "certificate",
            "certificate_compressed",
            "decryption",
            "decrypted",
            "client_to_server",
            "server_to_client",
            "rare",
        ];
        assert_eq!(fields(format!("{:#?}", TlsInfo::default())), tls);
        assert_eq!(
            fields(format!("{:#?}", Labels::default())),
            ["labels", "len"]
        );
    }

    #[test]
    fn damage_is_an_error() {
        let bare = encode(&ConnectionRecord::bare(
            ConnId(1),
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
        ));
        // A varint of 11 bytes.
        let mut input: &[u8] = &[0xff; 11];
        assert_eq!(take_record(&mut input).err(), Some(CodecError::BadVarint));
        // The address family (after first_seen, last_seen and id, one byte each).
        let mut bad = bare.clone();
        bad[3] = 5;
        assert!(matches!(
            take_record(&mut bad.as_slice()),
            Err(CodecError::BadTag { .. })
        ));
        // A list longer than the bytes left: the encapsulation, after two IPv4 addresses.
        let mut bad = bare.clone();
        bad[17] = 0x7f;
        assert!(matches!(
            take_record(&mut bad.as_slice()),
            Err(CodecError::LengthTooLarge { .. })
        ));
        // Tunnels nested past the bound.
        let mut deep = ConnectionRecord::bare(ConnId(1), bare_addr(), bare_addr());
        let mut t = None;
        for _ in 0..=MAX_DEPTH {
            t = Some(Box::new(TunnelRecord {
                protocol: AppProtocol::Unknown,
                tls: None,
                requests: Vec::new(),
                http2: None,
                tunnel: t,
            }));
        }
        deep.tunnel = t;
        assert_eq!(
            take_record(&mut encode(&deep).as_slice()).err(),
            Some(CodecError::TooDeep { max: MAX_DEPTH })
        );
    }

    fn bare_addr() -> SocketAddr {
        "10.0.0.1:1".parse().unwrap()
    }

    /// Throughput and size on a large capture, as `MISDIRECT_CODEC_BENCH=x.pcap` names it
    /// (its key log beside it), by default the synthesized 1 GiB capture of
    /// `docs/performance.md`:
    ///
    /// ```sh
    /// cargo test --release --lib analysis::codec::tests::throughput -- --ignored --nocapture
    /// ```
    ///
    /// The memory the decoded records take is measured in a process of its own (this test
    /// again, with `MISDIRECT_CODEC_RESIDENT` naming their encoding): in this one, the
    /// analysis leaves freed memory the copies would fill unseen.
    #[test]
    #[ignore = "a benchmark: needs a large capture"]
    fn throughput() {
        use std::time::{Duration, Instant};
        if let Some(file) = std::env::var_os("MISDIRECT_CODEC_RESIDENT") {
            return resident(Path::new(&file));
        }
        let path = std::env::var_os("MISDIRECT_CODEC_BENCH")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/tmp/misdirect-bench/synth-1G-seed1.pcap".into());
        let started = Instant::now();
        let report = crate::samples::report(&path);
        let records = &report.connections;
        let n = records.len();
        let requests: usize = records.iter().map(|r| r.requests.len()).sum();
        println!(
            "{}: {n} records, {requests} requests (analysed in {:.1?})",
            path.display(),
            started.elapsed()
        );
        let mut buf = Vec::new();
        for r in records {
            buf.extend_from_slice(&assert_round_trip(r, "bench"));
        }
        let bytes = buf.len();
        let per_record = |rounds: usize, t: Duration| {
            let secs = t.as_secs_f64();
            let mb = (bytes * rounds) as f64 / secs / 1e6;
            let rps = (n * rounds) as f64 / secs;
            format!("{mb:.0} MB/s, {rps:.0} records/s")
        };
        let (mut rounds, t) = (0, Instant::now());
        while t.elapsed() < Duration::from_secs(2) {
            buf.clear();
            for r in records {
                put_record(r, &mut buf);
            }
            rounds += 1;
        }
        println!("encode: {}", per_record(rounds, t.elapsed()));
        let (mut rounds, t) = (0, Instant::now());
        while t.elapsed() < Duration::from_secs(2) {
            let mut input = buf.as_slice();
            while !input.is_empty() {
                std::hint::black_box(take_record(&mut input).unwrap());
            }
            rounds += 1;
        }
        println!("decode (and drop): {}", per_record(rounds, t.elapsed()));
        println!(
            "encoded: {bytes} bytes, {:.0} per record, {:.0} per request",
            bytes as f64 / n as f64,
            bytes as f64 / requests.max(1) as f64
        );
        let file = std::env::temp_dir().join(format!("misdirect-codec-{}.bin", std::process::id()));
        std::fs::write(&file, &buf).unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "analysis::codec::tests::throughput",
                "--ignored",
                "--nocapture",
            ])
            .env("MISDIRECT_CODEC_RESIDENT", &file)
            .output()
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        let child = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{child}");
        for line in child.lines().filter(|l| l.starts_with("in memory")) {
            println!("{line}");
        }
    }

    /// Bytes resident, from `/proc/self/statm` (4 KiB pages).
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split(' ').nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    /// Decodes the records in `file` into boxes, as a report keeps them, enough copies to
    /// make a few hundred MB, and says what they took.
    fn resident(file: &Path) {
        let buf = std::fs::read(file).unwrap();
        let copies = (300 << 20) / buf.len().max(1) + 1;
        let before = resident_bytes();
        let mut kept: Vec<Box<ConnectionRecord>> = Vec::new();
        for _ in 0..copies {
            let mut input = buf.as_slice();
            while !input.is_empty() {
                kept.push(Box::new(take_record(&mut input).unwrap()));
            }
        }
        let taken = resident_bytes() - before;
        println!(
            "in memory: {:.0} bytes per decoded record, against {:.0} encoded ({copies} copies, \
             {} records, {} B resident; texts and lists unshared)",
            taken as f64 / kept.len() as f64,
            (buf.len() * copies) as f64 / kept.len() as f64,
            kept.len(),
            taken
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4000))]

        /// Arbitrary bytes never panic; what reads is read again the same after a round trip.
        #[test]
        fn arbitrary_bytes_never_panic(
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            check_arbitrary(&b);
        }

        /// Real encodings with a few bytes changed: closer to a damaged file than noise.
        #[test]
        fn damaged_records_never_panic(
            edits in proptest::collection::vec(
                (proptest::num::usize::ANY, proptest::num::u8::ANY),
                1..6,
            ),
        ) {
            let mut b = encode(&full_record());
            for (at, byte) in edits {
                let i = at % b.len();
                b[i] = byte;
            }
            check_arbitrary(&b);
        }
    }

    fn check_arbitrary(b: &[u8]) {
        let mut input = b;
        if let Ok(r) = take_record(&mut input) {
            assert!(input.len() < b.len());
            let again = encode(&r);
            let back = take_record(&mut again.as_slice()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
        }
    }
}
