//! Decoding: link layer → tunnels → IPv4/IPv6 (fragments reassembled) → TCP or UDP.
//!
//! Contract: [`Decoder::decode`] turns one [`RawPacket`] into a [`Decapsulated`] view: the
//! innermost TCP or UDP packet ([`Decoded`], borrowing the packet or, for a reassembled
//! datagram, the decoder's buffer) and the [`Tunnel`] it was found in. Encapsulations (VXLAN,
//! GENEVE, GRE, ERSPAN, IP-in-IP, MPLS, PPPoE; `tunnel.rs`) are removed layer by layer, at
//! most `Limits::max_encapsulation_depth` of them, so everything after this module sees the
//! inner packet as if it had been captured bare. It never fails: a packet that is not IP is
//! counted, one that is malformed is counted as a named anomaly, and both yield `None`. A
//! packet cut by the snap length is decoded as far as it goes; the TCP payload bytes that were
//! on the wire but not captured are reported in [`TcpSegment::missing`] so reassembly can
//! turn them into a gap instead of losing track of sequence numbers.

pub mod defrag;
mod fast;
pub mod link;
pub mod tunnel;

use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::capture::{place, RawPacket};
use crate::{Limits, Timestamp};
use defrag::{Defragmenter, FragKey, Fragment};
use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice,
    UdpSlice,
};
use link::{LinkError, LinkPayload};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use tunnel::{Inner, Layer, Malformed, Outer, Peeled, Tunnel};

/// TCP header flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment: the header fields reassembly needs and the captured payload.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload: &'a [u8],
    /// Payload bytes that were on the wire after `payload` but not captured (snap length).
    pub missing: u32,
}

/// What a packet carried, with its endpoints.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp { payload: &'a [u8] },
}

impl<'a> Transport<'a> {
    fn payload(&self) -> &'a [u8] {
        match self {
            Transport::Tcp(t) => t.payload,
            Transport::Udp { payload } => payload,
        }
    }

    fn with_payload<'b>(self, payload: &'b [u8]) -> Transport<'b> {
        match self {
            Transport::Tcp(t) => Transport::Tcp(TcpSegment { payload, ..t }),
            Transport::Udp { .. } => Transport::Udp { payload },
        }
    }
}

/// A TCP or UDP packet with its endpoints (inside any tunnel: the inner packet's).
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub index: u64,
    pub origin: crate::capture::Origin,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport<'a>,
}

/// What [`Decoder::decode`] returns: the innermost packet and the tunnels it was found in
/// (none for a packet captured bare). It reads as its inner [`Decoded`] (`Deref`), so code
/// that does not care about tunnels need not know about them.
#[derive(Clone, Copy, Debug)]
pub struct Decapsulated<'a> {
    pub inner: Decoded<'a>,
    pub tunnel: &'a Tunnel,
}

impl<'a> std::ops::Deref for Decapsulated<'a> {
    type Target = Decoded<'a>;
    fn deref(&self) -> &Decoded<'a> {
        &self.inner
    }
}

/// Counts of what the decoder saw, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    pub packets: u64,
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    /// The counts below describe the innermost packet: a TCP segment inside VXLAN is a TCP
    /// segment.
    pub tcp: u64,
    pub udp: u64,
    /// IP packets of other protocols (ICMP, ...), and tunnels whose payload is not decoded
    /// (an unknown GRE protocol type, PPTP).
    pub other_ip: u64,
    /// Packets that are not IP at all (ARP, LLDP, PPP control protocols, ...).
    pub not_ip: u64,
    pub ip_fragments: u64,
    pub ip_datagrams_reassembled: u64,
    /// Packets found inside at least one tunnel (VXLAN, GENEVE, GRE, ERSPAN, IP-in-IP, MPLS,
    /// PPPoE) and decoded from there.
    pub encapsulated: u64,
}

impl DecodeStats {
    pub fn add(&mut self, o: &DecodeStats) {
        self.packets += o.packets;
        self.captured_bytes += o.captured_bytes;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.other_ip += o.other_ip;
        self.not_ip += o.not_ip;
        self.ip_fragments += o.ip_fragments;
        self.ip_datagrams_reassembled += o.ip_datagrams_reassembled;
        self.encapsulated += o.encapsulated;
    }
}

/// What the decoder is configured with, besides the fragment limits.
struct Config {
    /// UDP destination ports taken for VXLAN (4789 and `Limits::vxlan_ports`).
    vxlan_ports: Vec<u16>,
    max_depth: usize,
}

/// A packet [`Decoder::decode_or_defer`] left to a decoder that sees every IP fragment.
#[derive(Debug)]
pub(crate) struct Deferred;

pub struct Decoder {
    general: General,
    /// Plain TCP packets are decoded by [`fast`] (off only to check it against the rest).
    fast: bool,
    pub stats: DecodeStats,
    pub anomalies: AnomalyCounts,
}

/// What the general path (every layer, tunnels, IP reassembly) keeps between packets; a
/// packet's counts are passed apart, since they may go elsewhere than the decoder's own.
struct General {
    defrag: Defragmenter,
    /// The reassembled datagram the last packet returned borrows from.
    held: Vec<u8>,
    /// The last packet's tunnel context.
    tunnel: Tunnel,
    config: Config,
}

/// What the bytes at hand start with.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// An Ethernet II frame (VLAN tags allowed).
    Ethernet,
    /// A network-layer packet of this EtherType (IPv4, IPv6, MPLS, PPPoE session, ...).
    EtherType(u16),
    /// The payload of an IP datagram reassembled from fragments.
    Reassembled { ips: (IpAddr, IpAddr), protocol: u8 },
}

/// The outcome of decoding one layer.
enum Step<'d> {
    /// A header was removed: decode what follows.
    Inner(Next, &'d [u8]),
    /// An IP fragment: its datagram is reassembled before going on.
    Fragment(Fragment<'d>),
    /// The innermost packet.
    Done(Decoded<'d>),
    /// Nothing more to decode; already counted.
    Stop,
}

impl Decoder {
    pub fn new(limits: &Limits) -> Self {
        let mut vxlan_ports = vec![tunnel::VXLAN_PORT];
        vxlan_ports.extend(&limits.vxlan_ports);
        vxlan_ports.sort_unstable();
        vxlan_ports.dedup();
        Decoder {
            general: General {
                defrag: Defragmenter::new(limits),
                held: Vec::new(),
                tunnel: Tunnel::default(),
                config: Config {
                    vxlan_ports,
                    max_depth: limits.max_encapsulation_depth,
                },
            },
            fast: true,
            stats: DecodeStats::default(),
            anomalies: AnomalyCounts::default(),
        }
    }

    /// A decoder that decodes every packet the general way, to check [`fast`] against.
    pub(crate) fn without_fast_path(limits: &Limits) -> Self {
        Decoder {
            fast: false,
            ..Decoder::new(limits)
        }
    }

    /// Decodes one packet; `None` for anything that is not a TCP or UDP packet (counted).
    pub fn decode<'a>(&'a mut self, pkt: &RawPacket<'a>) -> Option<Decapsulated<'a>> {
        self.decode_or_defer(pkt, false).unwrap_or(None)
    }

    /// [`Decoder::decode`], or with `defer`, `Err(Deferred)` for an IP fragment, which is
    /// then neither counted nor kept: a decoder that sees every fragment (and so can
    /// reassemble them) decodes that packet instead (`pipeline::split`, where each thread
    /// decodes a part of the capture).
    pub(crate) fn decode_or_defer<'a>(
        &'a mut self,
        pkt: &RawPacket<'a>,
        defer: bool,
    ) -> Result<Option<Decapsulated<'a>>, Deferred> {
        let cut_bytes = pkt.cut_bytes();
        self.general.tunnel.clear();
        let link = link::strip(pkt.link, pkt.data);
        let Decoder {
            general,
            stats,
            anomalies,
            fast,
        } = self;
        if let (true, Ok(link)) = (*fast, link) {
            if let Some(inner) = fast::tcp(pkt, link) {
                count(stats, anomalies, pkt, cut_bytes);
                stats.tcp += 1;
                return Ok(Some(Decapsulated {
                    inner,
                    tunnel: &general.tunnel,
                }));
            }
        }
        // Deferring, what this packet counts stays apart until it is known not to be
        // deferred (an empty map of anomalies costs no allocation).
        let mut apart = defer.then(|| (DecodeStats::default(), AnomalyCounts::default()));
        let (counts, counted) = match apart.as_mut() {
            Some((s, a)) => (s, a),
            None => (&mut *stats, &mut *anomalies),
        };
        count(counts, counted, pkt, cut_bytes);
        let mut deferred = false;
        let decoded = general.decode(counts, counted, pkt, link, defer, &mut deferred);
        if deferred {
            return Err(Deferred);
        }
        if let Some((s, a)) = apart {
            stats.add(&s);
            anomalies.merge(&a);
        }
        Ok(decoded)
    }

    /// Incomplete datagrams left at the end of the capture are counted as timed out.
    pub fn finish(&mut self) {
        let left = self.general.defrag.pending() as u64;
        self.anomalies.add_n(Anomaly::IpFragmentTimeout, left);
    }
}

/// What every packet counts, before its layers.
fn count(stats: &mut DecodeStats, anomalies: &mut AnomalyCounts, pkt: &RawPacket<'_>, cut: u32) {
    stats.packets += 1;
    stats.captured_bytes += pkt.data.len() as u64;
    if cut > 0 {
        anomalies.add(Anomaly::SnaplenTruncated);
    }
}

impl General {
    /// The general path. With `defer`, a fragment sets `deferred` instead of going into
    /// reassembly.
    fn decode<'a>(
        &'a mut self,
        stats: &mut DecodeStats,
        anomalies: &mut AnomalyCounts,
        pkt: &RawPacket<'a>,
        link: Result<LinkPayload<'a>, LinkError>,
        defer: bool,
        deferred: &mut bool,
    ) -> Option<Decapsulated<'a>> {
        let cut_bytes = pkt.cut_bytes();
        let General {
            defrag,
            held,
            tunnel,
            config,
        } = self;
        let (mut next, mut data) = match link {
            Ok(LinkPayload::Ethernet(frame)) => (Next::Ethernet, frame),
            Ok(LinkPayload::Network { ether_type, data }) => (Next::EtherType(ether_type), data),
            Ok(LinkPayload::NotIp) => {
                stats.not_ip += 1;
                return None;
            }
            Err(LinkError::Truncated) => {
                anomalies.add(Anomaly::LinkHeaderInvalid);
                return None;
            }
            Err(LinkError::Unsupported) => {
                anomalies.add(Anomaly::UnsupportedLinkType);
                return None;
            }
        };
        let mut layers = Layers {
            stats,
            anomalies,
            tunnel: &mut *tunnel,
            config,
            index: pkt.index,
            origin: pkt.origin,
            ts: pkt.ts,
            cut_bytes,
        };
        // Every step removes a header, and only encapsulations (bounded by the depth limit)
        // lead back to a link or network layer; this bound is a second guard.
        let max_steps = config.max_depth.saturating_add(2).saturating_mul(4);
        // The packet's own bytes: what is decoded borrows the packet.
        let cut = cut_bytes > 0;
        let mut steps = 0;
        let mut frag = loop {
            steps += 1;
            if steps > max_steps {
                layers.anomalies.add(Anomaly::EncapsulationDepthLimit);
                return None;
            }
            match layers.step(next, data, cut) {
                Step::Inner(n, d) => (next, data) = (n, d),
                Step::Done(inner) => return Some(Decapsulated { inner, tunnel }),
                Step::Fragment(f) => break f,
                Step::Stop => return None,
            }
        };
        if defer {
            *deferred = true;
            return None;
        }
        // A reassembled datagram, decoded from a buffer of ours; a fragment found inside it (a
        // fragmented packet in a fragmented tunnel packet) is reassembled in turn.
        let mut buf = Vec::new();
        loop {
            let ips = (frag.key.src, frag.key.dst);
            let protocol = frag.key.protocol;
            let whole = defrag.add(frag, pkt.ts, layers.anomalies)?;
            defrag.recycle(std::mem::replace(&mut buf, whole));
            layers.stats.ip_datagrams_reassembled += 1;
            next = Next::Reassembled { ips, protocol };
            frag = loop {
                steps += 1;
                if steps > max_steps {
                    layers.anomalies.add(Anomaly::EncapsulationDepthLimit);
                    return None;
                }
                match layers.step(next, &buf, false) {
                    Step::Inner(n, d) => {
                        let (start, end) = place(&buf, d)?;
                        buf.truncate(end);
                        buf.drain(..start);
                        next = n;
                    }
                    Step::Done(inner) => {
                        // Re-borrow the payload from where the buffer is kept.
                        let (start, end) = place(&buf, inner.transport.payload())?;
                        let Decoded {
                            index,
                            origin,
                            ts,
                            src,
                            dst,
                            transport,
                        } = inner;
                        let transport = transport.with_payload(&[]);
                        defrag.recycle(std::mem::replace(held, buf));
                        let held: &'a Vec<u8> = held;
                        let payload = held.get(start..end)?;
                        return Some(Decapsulated {
                            inner: Decoded {
                                index,
                                origin,
                                ts,
                                src,
                                dst,
                                transport: transport.with_payload(payload),
                            },
                            tunnel,
                        });
                    }
                    Step::Fragment(f) => break f,
                    Step::Stop => return None,
                }
            };
        }
    }
}

/// Decodes the layers of one packet, counting what it finds.
struct Layers<'c> {
    stats: &'c mut DecodeStats,
    anomalies: &'c mut AnomalyCounts,
    tunnel: &'c mut Tunnel,
    config: &'c Config,
    index: u64,
    origin: crate::capture::Origin,
    ts: Timestamp,
    /// Bytes the snap length cut off the packet: no header can have lost more.
    cut_bytes: u32,
}

impl Layers<'_> {
    /// Decodes the header `data` starts with. `cut`: the bytes may end early because of the
    /// snap length (a header cut there is not malformed, only truncated, already counted).
    fn step<'d>(&mut self, next: Next, data: &'d [u8], cut: bool) -> Step<'d> {
        match next {
            Next::Ethernet => match LaxSlicedPacket::from_ethernet(data) {
                Ok(sliced) => self.sliced(sliced, cut),
                Err(_) => self.malformed(Anomaly::LinkHeaderInvalid),
            },
            Next::EtherType(tunnel::ETHERTYPE_MPLS | tunnel::ETHERTYPE_MPLS_MULTICAST) => {
                self.peeled(tunnel::mpls(data), cut, Counted::NotIp)
            }
            Next::EtherType(tunnel::ETHERTYPE_PPPOE_SESSION) => {
                self.peeled(tunnel::pppoe(data), cut, Counted::NotIp)
            }
            Next::EtherType(tunnel::ETHERTYPE_TEB) => Step::Inner(Next::Ethernet, data),
            Next::EtherType(t) => {
                self.sliced(LaxSlicedPacket::from_ether_type(EtherType(t), data), cut)
            }
            Next::Reassembled { ips, protocol } => self.ip_payload(ips, protocol, data, 0, false),
        }
    }

    /// What `etherparse` made of a link-layer frame or network packet: IP (and TCP/UDP) it
    /// parsed itself; MPLS and PPPoE behind Ethernet and VLAN tags are ours.
    fn sliced<'d>(&mut self, sliced: LaxSlicedPacket<'d>, cut: bool) -> Step<'d> {
        let tunnel_key = || self.tunnel.key().into();
        let (ips, payload, frag) = match &sliced.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                let payload = v4.payload().clone();
                let frag = payload.fragmented.then(|| Fragment {
                    key: FragKey {
                        src: h.source_addr().into(),
                        dst: h.destination_addr().into(),
                        id: u32::from(h.identification()),
                        protocol: payload.ip_number.0,
                        tunnel: tunnel_key(),
                    },
                    offset: h.fragments_offset(),
                    more: h.more_fragments(),
                    payload: payload.payload,
                });
                let ips = (h.source_addr().into(), h.destination_addr().into());
                (ips, payload, frag)
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let payload = v6.payload().clone();
                let frag = if payload.fragmented {
                    v6.extensions()
                        .clone()
                        .into_iter()
                        .find_map(|ext| match ext {
                            etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(Fragment {
                                key: FragKey {
                                    src: h.source_addr().into(),
                                    dst: h.destination_addr().into(),
                                    id: f.identification(),
                                    protocol: payload.ip_number.0,
                                    tunnel: tunnel_key(),
                                },
                                offset: f.fragment_offset(),
                                more: f.more_fragments(),
                                payload: payload.payload,
                            }),
                            _ => None,
                        })
                } else {
                    None
                };
                let ips = (h.source_addr().into(), h.destination_addr().into());
                (ips, payload, frag)
            }
            Some(LaxNetSlice::Arp(_)) => return self.not_ip(),
            None if sliced.stop_err.is_some() => return self.malformed(Anomaly::IpHeaderInvalid),
            None => {
                // Not IP: an MPLS or PPPoE frame is decoded further, anything else counted.
                return match sliced.ether_payload() {
                    Some(p)
                        if matches!(
                            p.ether_type.0,
                            tunnel::ETHERTYPE_MPLS
                                | tunnel::ETHERTYPE_MPLS_MULTICAST
                                | tunnel::ETHERTYPE_PPPOE_SESSION
                        ) =>
                    {
                        Step::Inner(Next::EtherType(p.ether_type.0), p.payload)
                    }
                    _ => self.not_ip(),
                };
            }
        };

        if let Some(frag) = frag {
            self.stats.ip_fragments += 1;
            if payload.incomplete {
                // A fragment cut by the snap length cannot complete its datagram.
                return Step::Stop;
            }
            return Step::Fragment(frag);
        }

        // Only the snap length can legitimately cut an IP payload short; a header claiming
        // more than was on the wire is lying (its payload is taken as captured).
        let missing = if cut {
            missing_ip_payload(&sliced, &payload).min(self.cut_bytes)
        } else {
            if payload.incomplete {
                self.anomalies.add(Anomaly::IpHeaderInvalid);
            }
            0
        };
        match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                self.stats.tcp += 1;
                Step::Done(self.tcp_packet(ips, tcp, missing))
            }
            Some(TransportSlice::Udp(udp)) => self.udp(ips, udp, cut),
            Some(_) => {
                self.stats.other_ip += 1;
                Step::Stop
            }
            None => self.ip_payload(ips, payload.ip_number.0, payload.payload, missing, cut),
        }
    }

    /// An IP payload of protocol `protocol`, not yet parsed (etherparse stops at tunnels and
    /// at transport headers it could not read; reassembled datagrams start here).
    fn ip_payload<'d>(
        &mut self,
        ips: (IpAddr, IpAddr),
        protocol: u8,
        data: &'d [u8],
        missing: u32,
        cut: bool,
    ) -> Step<'d> {
        let outer = Outer {
            src: ips.0,
            dst: ips.1,
        };
        match IpNumber(protocol) {
            IpNumber::TCP => match TcpSlice::from_slice(data) {
                Ok(tcp) => {
                    self.stats.tcp += 1;
                    Step::Done(self.tcp_packet(ips, &tcp, missing))
                }
                // A transport header cut by the snap length was counted as snaplen_truncated.
                Err(_) if cut => Step::Stop,
                Err(_) => self.malformed(Anomaly::TcpHeaderInvalid),
            },
            IpNumber::UDP => match UdpSlice::from_slice_lax(data) {
                Ok(udp) => self.udp(ips, &udp, cut),
                Err(_) if cut => Step::Stop,
                Err(_) => self.malformed(Anomaly::UdpHeaderInvalid),
            },
            IpNumber::IPV4 => self.encapsulated(
                Layer::IpInIp { outer },
                Next::EtherType(link::ETHERTYPE_IPV4),
                data,
            ),
            IpNumber::IPV6 => self.encapsulated(
                Layer::IpInIp { outer },
                Next::EtherType(link::ETHERTYPE_IPV6),
                data,
            ),
            IpNumber::GRE => self.peeled(tunnel::gre(data, outer), cut, Counted::OtherIp),
            _ => {
                self.stats.other_ip += 1;
                Step::Stop
            }
        }
    }

    /// A UDP datagram: VXLAN or GENEVE by destination port (RFC 7348 §5 and RFC 8926 §3.3
    /// fix it; the source port is a flow hash), else the innermost packet. A datagram to such
    /// a port whose header does not parse is reported and kept as plain UDP.
    fn udp<'d>(&mut self, ips: (IpAddr, IpAddr), udp: &UdpSlice<'d>, cut: bool) -> Step<'d> {
        let outer = Outer {
            src: ips.0,
            dst: ips.1,
        };
        let port = udp.destination_port();
        let parsed = if self.config.vxlan_ports.contains(&port) {
            Some(tunnel::vxlan(udp.payload(), outer))
        } else if port == tunnel::GENEVE_PORT {
            Some(tunnel::geneve(udp.payload(), outer))
        } else {
            None
        };
        match parsed {
            Some(Ok(Peeled {
                layer,
                inner: Inner::Ethernet,
                data,
            })) => return self.encapsulated(layer, Next::Ethernet, data),
            Some(Ok(Peeled {
                layer,
                inner: Inner::EtherType(t),
                data,
            })) => return self.encapsulated(layer, Next::EtherType(t), data),
            Some(Err(m)) if m.short && cut => return Step::Stop,
            Some(Err(m)) => self.anomalies.add(m.anomaly),
            Some(Ok(_)) | None => {}
        }
        self.stats.udp += 1;
        Step::Done(Decoded {
            index: self.index,
            origin: self.origin,
            ts: self.ts,
            src: SocketAddr::new(ips.0, udp.source_port()),
            dst: SocketAddr::new(ips.1, port),
            transport: Transport::Udp {
                payload: udp.payload(),
            },
        })
    }

    /// An encapsulation header parsed by `tunnel.rs`: go inside, or count what is not decoded
    /// as `other`, or report the header.
    fn peeled<'d>(
        &mut self,
        parsed: Result<Peeled<'d>, Malformed>,
        cut: bool,
        other: Counted,
    ) -> Step<'d> {
        match parsed {
            Ok(Peeled {
                layer,
                inner: Inner::Ethernet,
                data,
            }) => self.encapsulated(layer, Next::Ethernet, data),
            Ok(Peeled {
                layer,
                inner: Inner::EtherType(t),
                data,
            }) => self.encapsulated(layer, Next::EtherType(t), data),
            Ok(Peeled {
                inner: Inner::Other,
                ..
            }) => {
                match other {
                    Counted::OtherIp => self.stats.other_ip += 1,
                    Counted::NotIp => self.stats.not_ip += 1,
                }
                Step::Stop
            }
            Err(m) if m.short && cut => Step::Stop,
            Err(m) => self.malformed(m.anomaly),
        }
    }

    /// Goes inside one more tunnel, within the depth limit.
    fn encapsulated<'d>(&mut self, layer: Layer, next: Next, data: &'d [u8]) -> Step<'d> {
        if self.tunnel.depth() >= self.config.max_depth {
            return self.malformed(Anomaly::EncapsulationDepthLimit);
        }
        if self.tunnel.is_empty() {
            self.stats.encapsulated += 1;
        }
        self.tunnel.push(layer);
        Step::Inner(next, data)
    }

    fn tcp_packet<'d>(
        &self,
        (src, dst): (IpAddr, IpAddr),
        tcp: &TcpSlice<'d>,
        missing: u32,
    ) -> Decoded<'d> {
        Decoded {
            index: self.index,
            origin: self.origin,
            ts: self.ts,
            src: SocketAddr::new(src, tcp.source_port()),
            dst: SocketAddr::new(dst, tcp.destination_port()),
            transport: Transport::Tcp(TcpSegment {
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags: TcpFlags {
                    syn: tcp.syn(),
                    ack: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                },
                window: tcp.window_size(),
                payload: tcp.payload(),
                missing,
            }),
        }
    }

    fn malformed(&mut self, a: Anomaly) -> Step<'static> {
        self.anomalies.add(a);
        Step::Stop
    }

    fn not_ip(&mut self) -> Step<'static> {
        self.stats.not_ip += 1;
        Step::Stop
    }
}

/// Where a packet whose tunnel payload is not decoded is counted: as the carrier was before
/// tunnels were decoded (GRE as other IP; MPLS and PPPoE frames as not IP).
#[derive(Clone, Copy)]
enum Counted {
    OtherIp,
    NotIp,
}

/// Bytes of IP payload that the header declares but the capture does not hold.
fn missing_ip_payload(sliced: &LaxSlicedPacket<'_>, payload: &LaxIpPayloadSlice<'_>) -> u32 {
    if !payload.incomplete {
        return 0;
    }
    let declared = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            usize::from(h.total_len()).saturating_sub(usize::from(h.ihl()) * 4)
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            usize::from(v6.header().payload_length()).saturating_sub(v6.extensions().slice().len())
        }
        _ => 0,
    };
    u32::try_from(declared.saturating_sub(payload.payload.len())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use etherparse::PacketBuilder;

    fn raw(link: LinkType, data: &[u8], orig_len: u32) -> RawPacket<'_> {
        RawPacket {
            index: 1,
            origin: Default::default(),
            ts: Timestamp(5),
            link,
            data,
            orig_len,
        }
    }

    /// (source, destination, sequence number, payload length, missing bytes) of a packet.
    type Summary = (SocketAddr, SocketAddr, u32, usize, u32);

    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 1234, 1000)
            .syn()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn decode_one(link: LinkType, data: &[u8], orig_len: u32) -> (Option<Summary>, Decoder) {
        let mut d = Decoder::new(&Limits::default());
        let r = raw(link, data, orig_len);
        let out = d.decode(&r).map(|p| match p.transport {
            Transport::Tcp(t) => (p.src, p.dst, t.seq, t.payload.len(), t.missing),
            Transport::Udp { payload } => (p.src, p.dst, 0, payload.len(), 0),
        });
        (out, d)
    }

    #[test]
    fn parses_ipv4_tcp() {
        let pkt = ipv4_tcp(b"hello");
        let (out, d) = decode_one(LinkType::Raw, &pkt, pkt.len() as u32);
        let (src, dst, seq, len, missing) = out.unwrap();
        assert_eq!(
            (src.to_string().as_str(), dst.to_string().as_str()),
            ("10.0.0.1:40000", "10.0.0.2:443")
        );
        assert_eq!((seq, len, missing), (1234, 5, 0));
        assert_eq!(d.stats.tcp, 1);
        assert!(d.anomalies.is_empty());
    }

    #[test]
    fn parses_ipv6_with_extension_header_and_udp() {
        let mut v = Vec::new();
        let mut ip = etherparse::IpHeaders::Ipv6(
            etherparse::Ipv6Header {
                source: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                destination: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                hop_limit: 1,
                ..Default::default()
            },
            Default::default(),
        );
        if let etherparse::IpHeaders::Ipv6(_, ext) = &mut ip {
            ext.hop_by_hop_options = Some(
                etherparse::Ipv6RawExtHeader::new_raw(etherparse::IpNumber::UDP, &[0; 6]).unwrap(),
            );
        }
        PacketBuilder::ip(ip)
            .udp(5353, 5353)
            .write(&mut v, b"q")
            .unwrap();
        let (out, d) = decode_one(LinkType::Ipv6, &v, v.len() as u32);
        let (src, _, _, len, _) = out.unwrap();
        assert_eq!(src.to_string(), "[fe80::1]:5353");
        assert_eq!(len, 1);
        assert_eq!(d.stats.udp, 1);
    }

    #[test]
    fn truncated_headers_are_anomalies() {
        let pkt = ipv4_tcp(b"");
        // IPv4 header cut in half, captured as if that was all there was.
        let (out, d) = decode_one(LinkType::Raw, &pkt[..10], 10);
        assert!(out.is_none());
        assert_eq!(d.anomalies.get(Anomaly::IpHeaderInvalid), 1);
        // TCP header cut short without the snap length to blame.
        let mut cut = pkt[..30].to_vec();
        cut[2..4].copy_from_slice(&30u16.to_be_bytes());
        let (out, d) = decode_one(LinkType::Raw, &cut, 30);
        assert!(out.is_none());
        assert_eq!(d.anomalies.get(Anomaly::TcpHeaderInvalid), 1);
        // The same cut by the snap length is only that.
        let (out, d) = decode_one(LinkType::Raw, &pkt[..30], pkt.len() as u32);
        assert!(out.is_none());
        assert_eq!(d.anomalies.by_name(), vec![("snaplen_truncated", 1)]);
    }

    #[test]
    fn impossible_lengths() {
        // IHL below 5.
        let mut pkt = ipv4_tcp(b"abc");
        pkt[0] = 0x44;
        let (out, d) = decode_one(LinkType::Raw, &pkt, pkt.len() as u32);
        assert!(out.is_none());
        assert_eq!(d.anomalies.get(Anomaly::IpHeaderInvalid), 1);
        // TCP data offset below 5 words.
        let mut pkt = ipv4_tcp(b"abc");
        pkt[20 + 12] = 0x30;
        let (out, d) = decode_one(LinkType::Raw, &pkt, pkt.len() as u32);
        assert!(out.is_none());
        assert_eq!(d.anomalies.get(Anomaly::TcpHeaderInvalid), 1);
        // IPv4 total length beyond the packet (not a snap-length cut): payload as captured.
        let mut pkt = ipv4_tcp(b"abc");
        pkt[2..4].copy_from_slice(&1500u16.to_be_bytes());
        let (out, d) = decode_one(LinkType::Raw, &pkt, pkt.len() as u32);
        assert_eq!(out.unwrap().3, 3);
        assert_eq!(d.anomalies.get(Anomaly::IpHeaderInvalid), 1);
    }

    #[test]
    fn snaplen_cut_reports_missing_payload() {
        let pkt = ipv4_tcp(&[7; 100]);
        let (out, _) = decode_one(LinkType::Raw, &pkt[..60], pkt.len() as u32);
        let (_, _, _, len, missing) = out.unwrap();
        assert_eq!((len, missing), (20, 80));
        // A header that declares more than the capture says was cut: only the cut is missing.
        let (out, _) = decode_one(LinkType::Raw, &pkt[..60], 61);
        assert_eq!(out.unwrap().4, 1);
    }

    #[test]
    fn non_ip_and_unknown_links_are_counted() {
        let mut arp = vec![0xff; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        let (out, d) = decode_one(LinkType::Ethernet, &arp, arp.len() as u32);
        assert!(out.is_none());
        assert_eq!(d.stats.not_ip, 1);
        let (out, d) = decode_one(LinkType::Other(147), &arp, arp.len() as u32);
        assert!(out.is_none());
        assert_eq!(d.anomalies.get(Anomaly::UnsupportedLinkType), 1);
        let (_, d) = decode_one(LinkType::Ethernet, &arp[..5], 5);
        assert_eq!(d.anomalies.get(Anomaly::LinkHeaderInvalid), 1);
    }
}
