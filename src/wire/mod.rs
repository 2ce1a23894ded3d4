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

        // Only the snap length can legitimately cut an IP payload short; a header claiming
        // more than was on the wire is lying (its payload is taken as captured).
        let missing = if pkt.is_truncated() {
            missing_ip_payload(&sliced, &payload)
        } else {
            if payload.incomplete {
                self.anomalies.add(Anomaly::IpHeaderInvalid);
            }
            0
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use etherparse::PacketBuilder;

    fn raw(link: LinkType, data: &[u8], orig_len: u32) -> RawPacket<'_> {
        RawPacket {
            index: 1,
            input: 0,
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
