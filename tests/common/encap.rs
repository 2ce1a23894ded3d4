//! Test support: encapsulation headers (VXLAN, GENEVE, GRE, ERSPAN I/II/III, IP-in-IP, MPLS,
//! PPPoE) written around IP packets or Ethernet frames, by the RFCs' layouts, independently
//! of the decoder (tshark checks the same bytes in tests/encapsulation.rs).

use etherparse::{IpNumber, PacketBuilder};
use std::net::IpAddr;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_TEB: u16 = 0x6558;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
pub const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
pub const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

/// The EtherType of an IP packet, by its version nibble.
pub fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    }
}

/// An Ethernet II frame (underlay MACs of our own).
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0xee, 2, 0x02, 0, 0, 0, 0xee, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet frame around an IP packet.
pub fn eth_ip(ip: &[u8]) -> Vec<u8> {
    eth(ethertype_of(ip), ip)
}

/// The IP packet inside an Ethernet II frame (`None` for anything else, e.g. ARP).
pub fn ip_of_frame(frame: &[u8]) -> Option<&[u8]> {
    match frame.get(12..14)? {
        [0x08, 0x00] | [0x86, 0xdd] => frame.get(14..),
        _ => None,
    }
}

/// An outer IP packet of protocol `proto` (4, 41, 47, ...) around `payload`.
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64)
            .write(&mut out, IpNumber(proto), payload)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64)
            .write(&mut out, IpNumber(proto), payload)
            .unwrap(),
        _ => panic!("mixed address families"),
    }
    out
}

/// An outer IP/UDP datagram (checksummed) around `payload`.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, payload)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64)
            .udp(sport, dport)
            .write(&mut out, payload)
            .unwrap(),
        _ => panic!("mixed address families"),
    }
    out
}

/// RFC 7348: the 8-byte VXLAN header (I flag, VNI) and an Ethernet frame.
pub fn vxlan(vni: u32, frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0x08, 0, 0, 0];
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    h.extend_from_slice(frame);
    h
}

/// RFC 8926: GENEVE with `option_words` 4-byte words of one option (class 0x0103, type 1),
/// protocol type `proto` (0x6558 for Ethernet, or an IP EtherType).
pub fn geneve(vni: u32, proto: u16, option_words: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![option_words & 0x3f, 0];
    h.extend_from_slice(&proto.to_be_bytes());
    h.extend_from_slice(&(vni << 8).to_be_bytes());
    if option_words > 0 {
        // One option: class, type, length in words (of the data after its 4-byte header).
        h.extend_from_slice(&[0x01, 0x03, 0x01, option_words - 1]);
        h.extend(std::iter::repeat_n(0xab, 4 * usize::from(option_words - 1)));
    }
    h.extend_from_slice(payload);
    h
}

/// GRE options (RFC 2784/2890).
#[derive(Clone, Copy, Debug, Default)]
pub struct GreOpts {
    pub checksum: bool,
    pub key: Option<u32>,
    pub seq: Option<u32>,
}

/// A GRE header (with a correct checksum when asked) and its payload.
pub fn gre(opts: GreOpts, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut flags = 0u8;
    if opts.checksum {
        flags |= 0x80;
    }
    if opts.key.is_some() {
        flags |= 0x20;
    }
    if opts.seq.is_some() {
        flags |= 0x10;
    }
    let mut h = vec![flags, 0];
    h.extend_from_slice(&proto.to_be_bytes());
    if opts.checksum {
        h.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = opts.key {
        h.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(s) = opts.seq {
        h.extend_from_slice(&s.to_be_bytes());
    }
    h.extend_from_slice(payload);
    if opts.checksum {
        let sum = internet_checksum(&h);
        h[4..6].copy_from_slice(&sum.to_be_bytes());
    }
    h
}

/// RFC 1071.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ERSPAN type I: GRE without sequence number, protocol 0x88BE, the frame right after.
pub fn erspan1(frame: &[u8]) -> Vec<u8> {
    gre(GreOpts::default(), ETHERTYPE_ERSPAN_2, frame)
}

/// ERSPAN type II in GRE (sequence number `seq`): Ver 1, VLAN 0, CoS 0, En 0, T 0,
/// the 10-bit session, index 0.
pub fn erspan2(session: u16, seq: u32, frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0x10, 0x00];
    h.extend_from_slice(&(session & 0x3ff).to_be_bytes()); // CoS, En, T 0
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(frame);
    gre(
        GreOpts {
            seq: Some(seq),
            ..GreOpts::default()
        },
        ETHERTYPE_ERSPAN_2,
        &h,
    )
}

/// ERSPAN type III in GRE: Ver 2, the session, a timestamp, frame type `ft` (0 Ethernet,
/// 2 IP), hardware id 5, and the 8-byte platform-specific sub-header when `platform`.
pub fn erspan3(session: u16, seq: u32, ft: u8, platform: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x20, 0x00];
    h.extend_from_slice(&(session & 0x3ff).to_be_bytes());
    h.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // timestamp
    h.extend_from_slice(&[0, 0]); // SGT
    let hw_id: u16 = 5;
    let word: u16 = (u16::from(ft & 0x1f) << 10) | (hw_id << 4) | u16::from(platform);
    h.extend_from_slice(&word.to_be_bytes());
    if platform {
        // Platform ID 0x03 with a timestamp's upper bits.
        h.extend_from_slice(&[0x03 << 2, 0, 0, 0, 0, 0, 0, 0x11]);
    }
    h.extend_from_slice(payload);
    gre(
        GreOpts {
            seq: Some(seq),
            ..GreOpts::default()
        },
        ETHERTYPE_ERSPAN_3,
        &h,
    )
}

/// An MPLS label stack (outermost first; TTL 64; the last entry is the bottom) and payload.
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bottom = u32::from(i + 1 == labels.len());
        h.extend_from_slice(&((l << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    h.extend_from_slice(payload);
    h
}

/// The RFC 4385 pseudowire control word (first nibble 0) and an Ethernet frame.
pub fn pw_control_word(seq: u16, frame: &[u8]) -> Vec<u8> {
    let mut h = vec![0, 0];
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(frame);
    h
}

/// A PPPoE session header (RFC 2516) and a PPP frame (protocol 0x0021 IPv4, 0x0057 IPv6).
pub fn pppoe(session: u16, ip: &[u8]) -> Vec<u8> {
    let ppp_proto: u16 = if ethertype_of(ip) == ETHERTYPE_IPV6 {
        0x0057
    } else {
        0x0021
    };
    let mut h = vec![0x11, 0x00];
    h.extend_from_slice(&session.to_be_bytes());
    h.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    h.extend_from_slice(&ppp_proto.to_be_bytes());
    h.extend_from_slice(ip);
    h
}
