//! Decoding: link layer → IPv4/IPv6 (fragments reassembled) → TCP or UDP.
//!
//! Contract: [`Decoder::decode`] turns one [`RawPacket`] into a [`Decoded`] view that borrows
//! the packet (or, for a reassembled datagram, the decoder's buffer). It never fails: a packet
//! that is not IP is counted, one that is malformed is counted as a named anomaly, and both
//! yield `None`. A packet cut by the snap length is decoded as far as it goes; the TCP payload
//! bytes that were on the wire but not captured are reported in [`TcpSegment::missing`] so
//! reassembly can turn them into a gap instead of losing track of sequence numbers.

pub mod defrag;
pub mod link;

use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::capture::RawPacket;
use crate::{Limits, Timestamp};
use defrag::{Defragmenter, FragKey, Fragment};
use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice,
    UdpSlice,
};
use link::{LinkError, LinkPayload};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

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

#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub index: u64,
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport<'a>,
}

/// Counts of what the decoder saw, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    pub packets: u64,
    /// Sum of captured lengths.
    pub captured_bytes: u64,
    pub tcp: u64,
    pub udp: u64,
    /// IP packets of other protocols (ICMP, ...).
    pub other_ip: u64,
    /// Packets that are not IP at all (ARP, LLDP, ...).
    pub not_ip: u64,
    pub ip_fragments: u64,
    pub ip_datagrams_reassembled: u64,
}

pub struct Decoder {
    defrag: Defragmenter,
    pub stats: DecodeStats,
    pub anomalies: AnomalyCounts,
}

impl Decoder {
    pub fn new(limits: &Limits) -> Self {
        Decoder {
            defrag: Defragmenter::new(limits),
            stats: DecodeStats::default(),
            anomalies: AnomalyCounts::default(),
        }
    }

    /// Decodes one packet; `None` for anything that is not a TCP or UDP packet (counted).
    pub fn decode<'a>(&'a mut self, pkt: &RawPacket<'a>) -> Option<Decoded<'a>> {
        self.stats.packets += 1;
        self.stats.captured_bytes += pkt.data.len() as u64;
        if pkt.is_truncated() {
            self.anomalies.add(Anomaly::SnaplenTruncated);
        }
        let sliced = match link::strip(pkt.link, pkt.data) {
            Ok(LinkPayload::Ethernet(frame)) => match LaxSlicedPacket::from_ethernet(frame) {
                Ok(s) => s,
                Err(_) => return self.malformed(Anomaly::LinkHeaderInvalid),
            },
            Ok(LinkPayload::Network { ether_type, data }) => {
                LaxSlicedPacket::from_ether_type(EtherType(ether_type), data)
            }
            Ok(LinkPayload::NotIp) => return self.not_ip(),
            Err(LinkError::Truncated) => return self.malformed(Anomaly::LinkHeaderInvalid),
            Err(LinkError::Unsupported) => return self.malformed(Anomaly::UnsupportedLinkType),
        };
        let (src_ip, dst_ip, payload, frag) = match &sliced.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                let payload = v4.payload();
                let frag = payload.fragmented.then(|| Fragment {
                    key: FragKey {
                        src: h.source_addr().into(),
                        dst: h.destination_addr().into(),
                        id: u32::from(h.identification()),
                        protocol: payload.ip_number.0,
                    },
                    offset: h.fragments_offset(),
                    more: h.more_fragments(),
                    payload: payload.payload,
                });
                let src: IpAddr = h.source_addr().into();
                (
                    src,
                    IpAddr::from(h.destination_addr()),
                    payload.clone(),
                    frag,
                )
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let payload = v6.payload();
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
                let src: IpAddr = h.source_addr().into();
                (
                    src,
                    IpAddr::from(h.destination_addr()),
                    payload.clone(),
                    frag,
                )
            }
            Some(LaxNetSlice::Arp(_)) => return self.not_ip(),
            None => {
                return match sliced.stop_err {
                    Some(_) => self.malformed(Anomaly::IpHeaderInvalid),
                    None => self.not_ip(),
                }
            }
        };

        if let Some(frag) = frag {
            self.stats.ip_fragments += 1;
            if payload.incomplete {
                // A fragment cut by the snap length cannot complete its datagram.
                return None;
            }
            let whole = self.defrag.add(frag, pkt.ts, &mut self.anomalies)?;
            self.stats.ip_datagrams_reassembled += 1;
            let ip_number = IpNumber(frag.key.protocol);
            return decode_transport(
                &mut self.stats,
                &mut self.anomalies,
                pkt,
                (src_ip, dst_ip),
                ip_number,
                whole,
                0,
            );
        }

        let missing = missing_ip_payload(&sliced, &payload);
        match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                self.stats.tcp += 1;
                Some(tcp_packet(pkt, (src_ip, dst_ip), tcp, missing))
            }
            Some(TransportSlice::Udp(udp)) => {
                self.stats.udp += 1;
                Some(udp_packet(pkt, (src_ip, dst_ip), udp))
            }
            Some(_) => {
                self.stats.other_ip += 1;
                None
            }
            None => match payload.ip_number {
                IpNumber::TCP if !pkt.is_truncated() => self.malformed(Anomaly::TcpHeaderInvalid),
                IpNumber::UDP if !pkt.is_truncated() => self.malformed(Anomaly::UdpHeaderInvalid),
                // A transport header cut by the snap length was counted as snaplen_truncated.
                IpNumber::TCP | IpNumber::UDP => None,
                _ => {
                    self.stats.other_ip += 1;
                    None
                }
            },
        }
    }

    /// Incomplete datagrams left at the end of the capture are counted as timed out.
    pub fn finish(&mut self) {
        let left = self.defrag.pending() as u64;
        self.anomalies.add_n(Anomaly::IpFragmentTimeout, left);
    }

    fn malformed(&mut self, a: Anomaly) -> Option<Decoded<'static>> {
        self.anomalies.add(a);
        None
    }

    fn not_ip(&mut self) -> Option<Decoded<'static>> {
        self.stats.not_ip += 1;
        None
    }
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

fn decode_transport<'a>(
    stats: &mut DecodeStats,
    anomalies: &mut AnomalyCounts,
    pkt: &RawPacket<'_>,
    ips: (IpAddr, IpAddr),
    ip_number: IpNumber,
    data: &'a [u8],
    missing: u32,
) -> Option<Decoded<'a>> {
    match ip_number {
        IpNumber::TCP => match TcpSlice::from_slice(data) {
            Ok(tcp) => {
                stats.tcp += 1;
                Some(tcp_packet(pkt, ips, &tcp, missing))
            }
            Err(_) => {
                anomalies.add(Anomaly::TcpHeaderInvalid);
                None
            }
        },
        IpNumber::UDP => match UdpSlice::from_slice(data) {
            Ok(udp) => {
                stats.udp += 1;
                Some(udp_packet(pkt, ips, &udp))
            }
            Err(_) => {
                anomalies.add(Anomaly::UdpHeaderInvalid);
                None
            }
        },
        _ => {
            stats.other_ip += 1;
            None
        }
    }
}

fn tcp_packet<'a>(
    pkt: &RawPacket<'_>,
    (src, dst): (IpAddr, IpAddr),
    tcp: &TcpSlice<'a>,
    missing: u32,
) -> Decoded<'a> {
    Decoded {
        index: pkt.index,
        ts: pkt.ts,
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

fn udp_packet<'a>(
    pkt: &RawPacket<'_>,
    (src, dst): (IpAddr, IpAddr),
    udp: &UdpSlice<'a>,
) -> Decoded<'a> {
    Decoded {
        index: pkt.index,
        ts: pkt.ts,
        src: SocketAddr::new(src, udp.source_port()),
        dst: SocketAddr::new(dst, udp.destination_port()),
        transport: Transport::Udp {
            payload: udp.payload(),
        },
    }
}
