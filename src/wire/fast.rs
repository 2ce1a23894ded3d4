//! The common case without the general decoder: Ethernet (at most one 802.1Q tag), or IP
//! after any other link header `link.rs` strips (raw, loopback, Linux cooked) → IPv4 without
//! fragmentation or IPv6 without extension headers → TCP, with lengths that agree.
//!
//! Contract: [`tcp`] returns `None` for anything else, and the caller decodes it the general
//! way; when it returns a segment, it is exactly what the general decoder would have made of
//! those bytes (same endpoints, fields and payload, no anomaly, counted as TCP). The
//! `decode_packet` fuzz target checks this on every input, through both paths.
//!
//! Why: most packets of most captures are this case, and `etherparse`'s general slicing (its
//! result is a large struct, copied at each layer: `memmove` alone was 16% of a one-thread
//! run) was the largest part of the reading thread's work in a threaded one.

use super::link::{LinkPayload, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use super::{Decoded, TcpFlags, TcpSegment, Transport};
use crate::capture::RawPacket;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const IPPROTO_TCP: u8 = 6;

/// The TCP segment of `pkt`, whose link header `link` has been read, when it is the plain
/// case.
pub(super) fn tcp<'a>(pkt: &RawPacket<'a>, link: LinkPayload<'a>) -> Option<Decoded<'a>> {
    let (ether_type, data) = match link {
        LinkPayload::Ethernet(frame) => match be16(frame, 12)? {
            ETHERTYPE_VLAN => (be16(frame, 16)?, frame.get(18..)?),
            ether_type => (ether_type, frame.get(14..)?),
        },
        LinkPayload::Network { ether_type, data } => (ether_type, data),
        LinkPayload::NotIp => return None,
    };
    if ether_type != ETHERTYPE_IPV4 && ether_type != ETHERTYPE_IPV6 {
        return None;
    }
    // The version nibble decides, whatever the EtherType said, as in the general decoder.
    let (src, dst, segment) = match data.first()? >> 4 {
        4 => {
            let ihl = usize::from(data.first()? & 0x0f) * 4;
            let total = usize::from(be16(data, 2)?);
            let flags_offset = be16(data, 6)?;
            // More fragments, or a fragment offset: the general path reassembles it.
            if ihl < 20 || total < ihl || total > data.len() || flags_offset & 0x3fff != 0 {
                return None;
            }
            if *data.get(9)? != IPPROTO_TCP {
                return None;
            }
            let src: [u8; 4] = data.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = data.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                data.get(ihl..total)?,
            )
        }
        6 => {
            // A payload length of 0 may be a jumbogram: the general path decides.
            let len = usize::from(be16(data, 4)?);
            if len == 0 || *data.get(6)? != IPPROTO_TCP {
                return None;
            }
            let src: [u8; 16] = data.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = data.get(24..40)?.try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                data.get(40..40 + len)?,
            )
        }
        _ => return None,
    };
    let offset = usize::from(segment.get(12)? >> 4) * 4;
    if offset < 20 {
        return None;
    }
    let payload = segment.get(offset..)?;
    let flags = *segment.get(13)?;
    Some(Decoded {
        index: pkt.index,
        origin: pkt.origin,
        ts: pkt.ts,
        src: SocketAddr::new(src, be16(segment, 0)?),
        dst: SocketAddr::new(dst, be16(segment, 2)?),
        transport: Transport::Tcp(TcpSegment {
            seq: be32(segment, 4)?,
            ack: be32(segment, 8)?,
            flags: TcpFlags {
                fin: flags & 0x01 != 0,
                syn: flags & 0x02 != 0,
                rst: flags & 0x04 != 0,
                ack: flags & 0x10 != 0,
            },
            window: be16(segment, 14)?,
            payload,
            missing: 0,
        }),
    })
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*b.get(at..)?.first_chunk::<2>()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(at..)?.first_chunk::<4>()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::wire::Decoder;
    use crate::Limits;
    use etherparse::PacketBuilder;

    /// Plain packets of each kind the fast path takes, with the link they were captured on.
    fn plain() -> Vec<(LinkType, Vec<u8>)> {
        let mac = ([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]);
        let v4 = || PacketBuilder::ethernet2(mac.0, mac.1).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        let v6 = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut out = Vec::new();
        let mut add = |link, builder: etherparse::PacketBuilderStep<etherparse::TcpHeader>| {
            let mut v = Vec::new();
            builder.write(&mut v, b"GET / HTTP/1.1\r\n").unwrap();
            out.push((link, v));
        };
        add(LinkType::Ethernet, v4().tcp(40000, 80, 7, 900).ack(3).psh());
        add(
            LinkType::Ethernet,
            PacketBuilder::ethernet2(mac.0, mac.1)
                .single_vlan(42.try_into().unwrap())
                .ipv6(v6, v6, 64)
                .tcp(40000, 443, u32::MAX, 900)
                .syn()
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
                .unwrap(),
        );
        add(
            LinkType::Raw,
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 1)
                .tcp(1, 2, 3, 4)
                .fin()
                .rst(),
        );
        add(
            LinkType::Ipv6,
            PacketBuilder::ipv6(v6, v6, 1).tcp(5, 6, 7, 8),
        );
        // Ethernet padding after the IP packet, and IPv4 options.
        let (_, mut padded) = out[0].clone();
        padded.extend_from_slice(&[0; 6]);
        out.push((LinkType::Ethernet, padded));
        let (_, mut with_options) = out[2].clone();
        with_options[0] = 0x46;
        with_options.splice(20..20, [1, 1, 1, 0]);
        let total = u16::from_be_bytes([with_options[2], with_options[3]]) + 4;
        with_options[2..4].copy_from_slice(&total.to_be_bytes());
        out.push((LinkType::Raw, with_options));
        out
    }

    fn both_ways(link: LinkType, data: &[u8], orig_len: u32) -> [String; 2] {
        let limits = Limits::default();
        let pkt = RawPacket {
            index: 3,
            origin: Default::default(),
            ts: crate::Timestamp(9),
            link,
            data,
            orig_len,
        };
        [Decoder::new(&limits), Decoder::without_fast_path(&limits)].map(|mut d| {
            let decoded = d
                .decode(&pkt)
                .map(|p| format!("{:?} {:?}", p.inner, p.tunnel));
            format!("{decoded:?} {:?} {:?}", d.stats, d.anomalies)
        })
    }

    #[test]
    fn takes_the_plain_packets() {
        for (link, data) in plain() {
            let pkt = RawPacket {
                index: 1,
                origin: Default::default(),
                ts: crate::Timestamp(0),
                link,
                data: &data,
                orig_len: data.len() as u32,
            };
            let strip = crate::wire::link::strip(link, &data).unwrap();
            let d = tcp(&pkt, strip).expect("plain packet");
            let Transport::Tcp(seg) = d.transport else {
                unreachable!()
            };
            assert_eq!(seg.payload, b"GET / HTTP/1.1\r\n");
        }
    }

    /// Every change of one header byte to a few telling values, and every truncation, with
    /// and without the snap length to blame, decodes the same with and without the fast path.
    #[test]
    fn agrees_with_the_general_decoder() {
        let mut compared = 0;
        let payload = b"GET / HTTP/1.1\r\n";
        for (link, data) in plain() {
            // Every byte but the payload's: headers, and Ethernet padding after the packet.
            let start = data
                .windows(payload.len())
                .position(|w| w == payload)
                .unwrap();
            let outside = (0..data.len()).filter(|&at| at < start || at >= start + payload.len());
            for at in outside {
                let was = data[at];
                for value in [
                    0,
                    1,
                    4,
                    5,
                    6,
                    0x0f,
                    0x20,
                    0x3f,
                    0x40,
                    0x45,
                    0x50,
                    0x60,
                    0x81,
                    0xff,
                    was ^ 1,
                ] {
                    let mut changed = data.clone();
                    changed[at] = value;
                    let [a, b] = both_ways(link, &changed, changed.len() as u32);
                    assert_eq!(a, b, "byte {at} set to {value:#x} in {data:02x?}");
                    compared += 1;
                }
            }
            for len in 0..data.len() {
                for orig in [len, data.len()] {
                    let [a, b] = both_ways(link, &data[..len], orig as u32);
                    assert_eq!(a, b, "cut at {len} of {data:02x?}");
                }
            }
        }
        assert!(compared > 1000);
    }
}
