//! Encapsulation headers: VXLAN, GENEVE, GRE (with ERSPAN types I, II and III), MPLS label
//! stacks and PPPoE sessions; and the tunnel context a packet was found in.
//!
//! Contract: each parser takes the bytes after its carrier (a UDP payload, a GRE packet, the
//! payload of an Ethernet frame of the right EtherType) and returns what it learnt as a
//! [`Layer`], with what follows it ([`Inner`]) and those bytes; or [`Malformed`]. It never
//! reads past the slice and allocates nothing. IP-in-IP needs no parser: the outer header's
//! protocol number (4 or 41) says everything.
//!
//! A [`Layer`] is what the report shows. Its [`KeyPart`] is what separates one tunnel from
//! another in the connection key: the fields that are the same in both directions of a
//! connection and differ between tenants or sessions. `docs/encapsulation.md` explains the
//! choice field by field.

use crate::anomaly::Anomaly;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

pub const ETHERTYPE_TEB: u16 = 0x6558;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_IPV4: u16 = super::link::ETHERTYPE_IPV4;
const ETHERTYPE_IPV6: u16 = super::link::ETHERTYPE_IPV6;
const ETHERTYPE_VLAN: u16 = super::link::ETHERTYPE_VLAN;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

/// IANA's VXLAN port (RFC 7348 §5); others are added with `Limits::vxlan_ports`.
pub const VXLAN_PORT: u16 = 4789;
/// IANA's GENEVE port (RFC 8926 §3.3).
pub const GENEVE_PORT: u16 = 6081;

/// MPLS labels kept per stack for the report; deeper stacks are decoded all the same.
pub const MPLS_LABELS_KEPT: usize = 8;

/// The outer addresses of an IP tunnel, as the packet carried them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outer {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl Outer {
    /// The two ends in a fixed order, so both directions of a connection agree.
    fn ends(self) -> (IpAddr, IpAddr) {
        if self.src <= self.dst {
            (self.src, self.dst)
        } else {
            (self.dst, self.src)
        }
    }
}

/// The top of an MPLS label stack (the first [`MPLS_LABELS_KEPT`] labels, outermost first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    labels: [u32; MPLS_LABELS_KEPT],
    len: u8,
}

impl Labels {
    fn push(&mut self, label: u32) {
        if let Some(slot) = self.labels.get_mut(usize::from(self.len)) {
            *slot = label;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        self.labels.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The stack [`Labels::as_slice`] gave; `None` past [`MPLS_LABELS_KEPT`] labels. (For
    /// the spill codec, `analysis::codec`: the slots past the stack stay 0, as `push` leaves
    /// them.)
    pub(crate) fn from_slice(labels: &[u32]) -> Option<Self> {
        if labels.len() > MPLS_LABELS_KEPT {
            return None;
        }
        let mut l = Labels::default();
        for &label in labels {
            l.push(label);
        }
        Some(l)
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.as_slice().len()))?;
        for l in self.as_slice() {
            seq.serialize_element(l)?;
        }
        seq.end()
    }
}

/// One encapsulation a packet was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// RFC 7348: Ethernet in UDP, with a 24-bit VXLAN Network Identifier.
    Vxlan { vni: u32, outer: Outer },
    /// RFC 8926: Ethernet or IP in UDP, with a 24-bit Virtual Network Identifier.
    Geneve { vni: u32, outer: Outer },
    /// RFC 2784/2890: IP, Ethernet (0x6558) or MPLS in GRE, with its optional key.
    Gre { key: Option<u32>, outer: Outer },
    /// Cisco ERSPAN over GRE: type I (no header), II or III; types II and III name a
    /// 10-bit session.
    Erspan {
        erspan_type: u8,
        session: Option<u16>,
        outer: Outer,
    },
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (RFC 2003, RFC 4213 §3.5 "6in4", RFC 2473).
    IpInIp { outer: Outer },
    /// An MPLS label stack (RFC 3032).
    Mpls { labels: Labels },
    /// A PPPoE session (RFC 2516).
    Pppoe { session: u16 },
}

impl Layer {
    /// The stable name used in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Vxlan { .. } => "vxlan",
            Layer::Geneve { .. } => "geneve",
            Layer::Gre { .. } => "gre",
            Layer::Erspan { .. } => "erspan",
            Layer::IpInIp { .. } => "ip_in_ip",
            Layer::Mpls { .. } => "mpls",
            Layer::Pppoe { .. } => "pppoe",
        }
    }

    pub fn outer(&self) -> Option<Outer> {
        match *self {
            Layer::Vxlan { outer, .. }
            | Layer::Geneve { outer, .. }
            | Layer::Gre { outer, .. }
            | Layer::Erspan { outer, .. }
            | Layer::IpInIp { outer } => Some(outer),
            Layer::Mpls { .. } | Layer::Pppoe { .. } => None,
        }
    }

    /// What of this layer goes into the connection key; `None` for MPLS, whose labels are
    /// chosen per hop and per direction (see `docs/encapsulation.md`).
    pub fn key_part(&self) -> Option<KeyPart> {
        Some(match *self {
            Layer::Vxlan { vni, outer } => KeyPart::Vxlan {
                vni,
                ends: outer.ends(),
            },
            Layer::Geneve { vni, outer } => KeyPart::Geneve {
                vni,
                ends: outer.ends(),
            },
            Layer::Gre { key, outer } => KeyPart::Gre {
                key,
                ends: outer.ends(),
            },
            Layer::Erspan { session, outer, .. } => KeyPart::Erspan {
                session,
                ends: outer.ends(),
            },
            Layer::IpInIp { outer } => KeyPart::IpInIp { ends: outer.ends() },
            Layer::Pppoe { session } => KeyPart::Pppoe { session },
            Layer::Mpls { .. } => return None,
        })
    }
}

/// JSON: `{"kind": "vxlan", "vni": 42, "outer_src": "192.0.2.1", "outer_dst": "192.0.2.2"}`
/// (fields by kind; see `docs/report-schema.md`).
impl Serialize for Layer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        match self {
            Layer::Vxlan { vni, .. } | Layer::Geneve { vni, .. } => {
                m.serialize_entry("vni", vni)?;
            }
            Layer::Gre { key, .. } => {
                if let Some(k) = key {
                    m.serialize_entry("key", k)?;
                }
            }
            Layer::Erspan {
                erspan_type,
                session,
                ..
            } => {
                m.serialize_entry("type", erspan_type)?;
                if let Some(id) = session {
                    m.serialize_entry("session", id)?;
                }
            }
            Layer::Mpls { labels } => m.serialize_entry("labels", labels)?,
            Layer::Pppoe { session } => m.serialize_entry("session", session)?,
            Layer::IpInIp { .. } => {}
        }
        if let Some(o) = self.outer() {
            m.serialize_entry("outer_src", &o.src.to_string())?;
            m.serialize_entry("outer_dst", &o.dst.to_string())?;
        }
        m.end()
    }
}

/// Compact, for the text report: "vxlan 42 192.0.2.1→192.0.2.2", "mpls 16/17".
impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Vxlan { vni, .. } => write!(f, "vxlan {vni}")?,
            Layer::Geneve { vni, .. } => write!(f, "geneve {vni}")?,
            Layer::Gre { key: Some(k), .. } => write!(f, "gre key {k}")?,
            Layer::Gre { key: None, .. } => write!(f, "gre")?,
            Layer::Erspan {
                erspan_type,
                session,
                ..
            } => {
                let roman = match erspan_type {
                    1 => "I",
                    2 => "II",
                    _ => "III",
                };
                write!(f, "erspan {roman}")?;
                if let Some(id) = session {
                    write!(f, " session {id}")?;
                }
            }
            Layer::IpInIp { .. } => write!(f, "ip-in-ip")?,
            Layer::Mpls { labels } => {
                write!(f, "mpls ")?;
                for (i, l) in labels.as_slice().iter().enumerate() {
                    write!(f, "{}{l}", if i > 0 { "/" } else { "" })?;
                }
            }
            Layer::Pppoe { session } => write!(f, "pppoe session {session}")?,
        }
        if let Some(o) = self.outer() {
            write!(f, " {}→{}", o.src, o.dst)?;
        }
        Ok(())
    }
}

/// The part of a [`Layer`] that separates tunnels in the connection key. Outer addresses are
/// an unordered pair: the two directions of a connection swap them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyPart {
    Vxlan {
        vni: u32,
        ends: (IpAddr, IpAddr),
    },
    Geneve {
        vni: u32,
        ends: (IpAddr, IpAddr),
    },
    Gre {
        key: Option<u32>,
        ends: (IpAddr, IpAddr),
    },
    Erspan {
        session: Option<u16>,
        ends: (IpAddr, IpAddr),
    },
    IpInIp {
        ends: (IpAddr, IpAddr),
    },
    Pppoe {
        session: u16,
    },
}

/// The tunnels one packet was found in, outermost first, and the key they make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tunnel {
    layers: Vec<Layer>,
    key: Vec<KeyPart>,
}

/// The context of a packet captured bare.
pub static BARE: Tunnel = Tunnel {
    layers: Vec::new(),
    key: Vec::new(),
};

impl Tunnel {
    /// Outermost first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The tunnel context in the connection key: empty for a packet captured bare (and for
    /// one only inside MPLS).
    pub fn key(&self) -> &[KeyPart] {
        &self.key
    }

    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    pub(crate) fn push(&mut self, layer: Layer) {
        self.key.extend(layer.key_part());
        self.layers.push(layer);
    }

    pub(crate) fn clear(&mut self) {
        self.layers.clear();
        self.key.clear();
    }
}

/// What follows an encapsulation header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// An Ethernet II frame.
    Ethernet,
    /// A packet of this EtherType (IPv4, IPv6, MPLS).
    EtherType(u16),
    /// Something misdirect does not decode (a PPP control protocol, an MPLS OAM channel, an
    /// unknown GRE or GENEVE protocol type, PPTP's enhanced GRE).
    Other,
}

/// An encapsulation header removed, and what came after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peeled<'d> {
    pub layer: Layer,
    pub inner: Inner,
    pub data: &'d [u8],
}

/// A header that could not be read, with the anomaly it is reported as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub anomaly: Anomaly,
    /// It runs past the bytes at hand (the snap length may be to blame) rather than holding
    /// an impossible or unsupported value.
    pub short: bool,
}

fn short(anomaly: Anomaly) -> Malformed {
    Malformed {
        anomaly,
        short: true,
    }
}

fn invalid(anomaly: Anomaly) -> Malformed {
    Malformed {
        anomaly,
        short: false,
    }
}

fn split<const N: usize>(data: &[u8], anomaly: Anomaly) -> Result<([u8; N], &[u8]), Malformed> {
    let (head, rest) = data.split_first_chunk::<N>().ok_or(short(anomaly))?;
    Ok((*head, rest))
}

fn u24(b: [u8; 3]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

/// RFC 7348 §5: flags (I = 0x08 must be set), 24 reserved bits, the VNI, 8 reserved bits;
/// then an Ethernet frame. Reserved bits are ignored, as the RFC asks of receivers (Linux
/// uses some for its GBP extension).
pub fn vxlan(data: &[u8], outer: Outer) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::VxlanHeaderInvalid;
    let ([flags, _, _, _, v0, v1, v2, _], rest) = split::<8>(data, A)?;
    if flags & 0x08 == 0 {
        return Err(invalid(A));
    }
    Ok(Peeled {
        layer: Layer::Vxlan {
            vni: u24([v0, v1, v2]),
            outer,
        },
        inner: Inner::Ethernet,
        data: rest,
    })
}

/// RFC 8926 §3.4: version (0) and options length in 4-byte words, flags, the protocol type
/// (an EtherType; 0x6558 for Ethernet), the VNI; then the options, skipped.
pub fn geneve(data: &[u8], outer: Outer) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::GeneveHeaderInvalid;
    let ([v_optlen, _, p0, p1, v0, v1, v2, _], rest) = split::<8>(data, A)?;
    if v_optlen >> 6 != 0 {
        return Err(invalid(A));
    }
    let options = usize::from(v_optlen & 0x3f) * 4;
    let payload = rest.get(options..).ok_or(short(A))?;
    Ok(Peeled {
        layer: Layer::Geneve {
            vni: u24([v0, v1, v2]),
            outer,
        },
        inner: by_ether_type(u16::from_be_bytes([p0, p1])),
        data: payload,
    })
}

fn by_ether_type(ether_type: u16) -> Inner {
    match ether_type {
        ETHERTYPE_TEB => Inner::Ethernet,
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
            Inner::EtherType(ether_type)
        }
        _ => Inner::Other,
    }
}

/// RFC 2784 with RFC 2890's key and sequence number: C(hecksum), R(outing, RFC 1701 only),
/// K(ey), S(equence) flags and the version, the protocol type; then the checksum word (when C
/// or R), the key (K), the sequence number (S). Version 1 is PPTP's enhanced GRE (RFC 2637),
/// which carries PPP: not decoded. Source routing (R) was removed by RFC 2784 and is refused.
///
/// ERSPAN rides on GRE: protocol 0x88BE is type II when the sequence number is present and
/// type I (no ERSPAN header at all) when it is not, as Wireshark tells them; 0x22EB is type
/// III.
pub fn gre(data: &[u8], outer: Outer) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::GreHeaderInvalid;
    let ([flags, version, p0, p1], mut rest) = split::<4>(data, A)?;
    match version & 0x07 {
        0 => {}
        1 => {
            return Ok(Peeled {
                layer: Layer::Gre { key: None, outer },
                inner: Inner::Other,
                data: rest,
            })
        }
        _ => return Err(invalid(A)),
    }
    let (checksum, routing, has_key, has_seq) = (
        flags & 0x80 != 0,
        flags & 0x40 != 0,
        flags & 0x20 != 0,
        flags & 0x10 != 0,
    );
    if routing {
        return Err(invalid(A));
    }
    if checksum {
        rest = split::<4>(rest, A)?.1;
    }
    let mut key = None;
    if has_key {
        let (k, r) = split::<4>(rest, A)?;
        key = Some(u32::from_be_bytes(k));
        rest = r;
    }
    if has_seq {
        rest = split::<4>(rest, A)?.1;
    }
    let protocol = u16::from_be_bytes([p0, p1]);
    match protocol {
        ETHERTYPE_ERSPAN_2 if has_seq => erspan(rest, 2, outer),
        ETHERTYPE_ERSPAN_2 => Ok(Peeled {
            layer: Layer::Erspan {
                erspan_type: 1,
                session: None,
                outer,
            },
            inner: Inner::Ethernet,
            data: rest,
        }),
        ETHERTYPE_ERSPAN_3 => erspan(rest, 3, outer),
        _ => Ok(Peeled {
            layer: Layer::Gre { key, outer },
            inner: by_ether_type(protocol),
            data: rest,
        }),
    }
}

/// ERSPAN type II (8 bytes: Ver = 1, VLAN, CoS, En, T, Session ID, Index) or type III (12
/// bytes: Ver = 2, VLAN, CoS, BSO, T, Session ID, timestamp, SGT, P, FT, Hw ID, D, Gra, O,
/// then an 8-byte platform-specific sub-header when O is set). Type III's frame type FT is 0
/// for Ethernet and 2 for IP; other values are not decoded.
fn erspan(data: &[u8], erspan_type: u8, outer: Outer) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::ErspanHeaderInvalid;
    let ([b0, _, b2, b3], rest) = split::<4>(data, A)?;
    // The header's Ver field counts from 0 for type I: type II says 1, type III says 2.
    if u16::from(b0 >> 4) + 1 != u16::from(erspan_type) {
        return Err(invalid(A));
    }
    let session = Some(u16::from_be_bytes([b2 & 0x03, b3]));
    let layer = Layer::Erspan {
        erspan_type,
        session,
        outer,
    };
    if erspan_type == 2 {
        let (_index, frame) = split::<4>(rest, A)?;
        return Ok(Peeled {
            layer,
            inner: Inner::Ethernet,
            data: frame,
        });
    }
    let ([_, _, _, _, _, _, ft_hw, hw_o], mut frame) = split::<8>(rest, A)?;
    if hw_o & 0x01 != 0 {
        frame = split::<8>(frame, A)?.1;
    }
    let inner = match (ft_hw >> 2) & 0x1f {
        0 => Inner::Ethernet,
        2 => ip_by_version(frame),
        _ => Inner::Other,
    };
    Ok(Peeled {
        layer,
        inner,
        data: frame,
    })
}

fn ip_by_version(data: &[u8]) -> Inner {
    match data.first().map(|b| b >> 4) {
        Some(4) => Inner::EtherType(ETHERTYPE_IPV4),
        Some(6) => Inner::EtherType(ETHERTYPE_IPV6),
        _ => Inner::Other,
    }
}

/// RFC 3032: 4-byte entries (label, traffic class, bottom-of-stack, TTL) up to the one with
/// the bottom-of-stack bit. MPLS does not say what it carries, so the payload is guessed as
/// routers and Wireshark do: a first nibble of 4 is IPv4 and 6 is IPv6; 0 is a pseudowire
/// control word (RFC 4385) followed by an Ethernet frame; 1 is the associated channel
/// (OAM), not decoded; anything else is taken for an Ethernet pseudowire without control word
/// when bytes 12-13 hold an EtherType misdirect decodes. An Ethernet pseudowire without
/// control word whose destination MAC starts with 4 or 6 is misread as IP: that ambiguity is
/// why RFC 4385 and RFC 4928 recommend the control word.
pub fn mpls(data: &[u8]) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::MplsHeaderInvalid;
    let mut labels = Labels::default();
    let mut rest = data;
    loop {
        let (entry, r) = split::<4>(rest, A)?;
        rest = r;
        let entry = u32::from_be_bytes(entry);
        labels.push(entry >> 12);
        if entry & 0x100 != 0 {
            break;
        }
    }
    let layer = Layer::Mpls { labels };
    let (inner, data) = match rest.first().map(|b| b >> 4) {
        None => return Err(short(A)),
        Some(4 | 6) => (ip_by_version(rest), rest),
        Some(0) => (Inner::Ethernet, split::<4>(rest, A)?.1),
        Some(1) => (Inner::Other, rest),
        Some(_) => match rest.get(12..14) {
            Some(&[a, b]) if is_decoded_ether_type(u16::from_be_bytes([a, b])) => {
                (Inner::Ethernet, rest)
            }
            _ => (Inner::Other, rest),
        },
    };
    Ok(Peeled { layer, inner, data })
}

/// EtherTypes of frames misdirect can decode further.
fn is_decoded_ether_type(t: u16) -> bool {
    matches!(
        t,
        ETHERTYPE_IPV4
            | ETHERTYPE_IPV6
            | ETHERTYPE_VLAN
            | 0x88a8
            | 0x9100
            | ETHERTYPE_MPLS
            | ETHERTYPE_MPLS_MULTICAST
            | ETHERTYPE_PPPOE_SESSION
    )
}

/// RFC 2516 §4 session stage (EtherType 0x8864): version and type (both 1), code (0),
/// session ID, length; then a PPP frame (RFC 1661) whose protocol field is 2 bytes, or 1
/// when compressed (its low bit set). PPP protocol 0x0021 is IPv4 and 0x0057 IPv6; control
/// protocols (LCP, IPCP, authentication) are not decoded. A length beyond the captured bytes
/// takes what was captured; one shorter cuts Ethernet padding off.
pub fn pppoe(data: &[u8]) -> Result<Peeled<'_>, Malformed> {
    const A: Anomaly = Anomaly::PppoeHeaderInvalid;
    let ([ver_type, code, s0, s1, l0, l1], rest) = split::<6>(data, A)?;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if ver_type != 0x11 || code != 0 || len < 1 {
        return Err(invalid(A));
    }
    let ppp = rest.get(..len).unwrap_or(rest);
    let (protocol, payload) = match ppp {
        [p, r @ ..] if p & 1 == 1 => (u16::from(*p), r),
        [a, b, r @ ..] => (u16::from_be_bytes([*a, *b]), r),
        _ => return Err(short(A)),
    };
    let inner = match protocol {
        0x0021 => Inner::EtherType(ETHERTYPE_IPV4),
        0x0057 => Inner::EtherType(ETHERTYPE_IPV6),
        _ => Inner::Other,
    };
    Ok(Peeled {
        layer: Layer::Pppoe {
            session: u16::from_be_bytes([s0, s1]),
        },
        inner,
        data: payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: bool = true;
    fn err(anomaly: Anomaly, short: bool) -> Malformed {
        Malformed { anomaly, short }
    }

    fn outer() -> Outer {
        Outer {
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
        }
    }

    #[test]
    fn vxlan_header() {
        let p = vxlan(&[0x08, 0, 0, 0, 0, 0, 42, 0, 0xee], outer()).unwrap();
        assert_eq!(
            p.layer,
            Layer::Vxlan {
                vni: 42,
                outer: outer()
            }
        );
        assert_eq!((p.inner, p.data), (Inner::Ethernet, &[0xee][..]));
        let a = Anomaly::VxlanHeaderInvalid;
        assert_eq!(
            vxlan(&[0, 0, 0, 0, 0, 0, 42, 0], outer()),
            Err(err(a, !SHORT))
        );
        assert_eq!(vxlan(&[0x08, 0, 0], outer()), Err(err(a, SHORT)));
    }

    #[test]
    fn geneve_skips_options() {
        let mut h = vec![0x01, 0, 0x65, 0x58, 0, 1, 0, 0];
        h.extend_from_slice(&[9; 4]);
        h.push(0xee);
        let p = geneve(&h, outer()).unwrap();
        assert_eq!(
            p.layer,
            Layer::Geneve {
                vni: 256,
                outer: outer()
            }
        );
        assert_eq!((p.inner, p.data), (Inner::Ethernet, &[0xee][..]));
        let a = Anomaly::GeneveHeaderInvalid;
        h[0] = 0x02; // options run past the packet
        assert_eq!(geneve(&h, outer()), Err(err(a, SHORT)));
        h[0] = 0x40; // version 1
        assert_eq!(geneve(&h, outer()), Err(err(a, !SHORT)));
    }

    #[test]
    fn gre_options_and_erspan() {
        // C, K, S: checksum word, key 7, sequence; IPv4.
        let h = [
            0xb0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0x45,
        ];
        let p = gre(&h, outer()).unwrap();
        assert_eq!(
            p.layer,
            Layer::Gre {
                key: Some(7),
                outer: outer()
            }
        );
        assert_eq!((p.inner, p.data), (Inner::EtherType(0x0800), &[0x45][..]));
        let a = Anomaly::GreHeaderInvalid;
        assert_eq!(gre(&h[..10], outer()), Err(err(a, SHORT)));
        assert_eq!(gre(&[0x40, 0, 0x08, 0], outer()), Err(err(a, !SHORT)));
        // ERSPAN type I: no sequence number, no header.
        let p = gre(&[0, 0, 0x88, 0xbe, 0xee], outer()).unwrap();
        assert_eq!(p.inner, Inner::Ethernet);
        assert!(matches!(
            p.layer,
            Layer::Erspan {
                erspan_type: 1,
                session: None,
                ..
            }
        ));
        // Type II, session 0x123.
        let h = [
            0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0x01, 0x23, 0, 0, 0, 0, 0xee,
        ];
        let p = gre(&h, outer()).unwrap();
        assert!(matches!(
            p.layer,
            Layer::Erspan {
                erspan_type: 2,
                session: Some(0x123),
                ..
            }
        ));
        assert_eq!(p.data, &[0xee]);
        let mut bad = h;
        bad[8] = 0x20;
        let a = Anomaly::ErspanHeaderInvalid;
        assert_eq!(gre(&bad, outer()), Err(err(a, !SHORT)));
        assert_eq!(gre(&h[..12], outer()), Err(err(a, SHORT)));
        // Type III with the platform sub-header (O) and frame type IP.
        let mut h = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        h.extend_from_slice(&[0x20, 0, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 2 << 2, 0x01]);
        h.extend_from_slice(&[0; 8]);
        h.push(0x60);
        let p = gre(&h, outer()).unwrap();
        assert!(matches!(
            p.layer,
            Layer::Erspan {
                erspan_type: 3,
                session: Some(5),
                ..
            }
        ));
        assert_eq!((p.inner, p.data), (Inner::EtherType(0x86dd), &[0x60][..]));
        // PPTP's enhanced GRE is not decoded.
        assert_eq!(
            gre(&[0x30, 0x81, 0x88, 0x0b], outer()).unwrap().inner,
            Inner::Other
        );
    }

    #[test]
    fn mpls_stack_and_payload_guess() {
        let entry =
            |label: u32, bottom: bool| (label << 12 | u32::from(bottom) << 8 | 64).to_be_bytes();
        let mut h = Vec::new();
        h.extend_from_slice(&entry(16, false));
        h.extend_from_slice(&entry(1000, true));
        let with = |payload: &[u8]| {
            let mut v = h.clone();
            v.extend_from_slice(payload);
            v
        };
        let v4 = with(&[0x45]);
        let p = mpls(&v4).unwrap();
        assert_eq!(p.inner, Inner::EtherType(0x0800));
        match p.layer {
            Layer::Mpls { labels } => assert_eq!(labels.as_slice(), &[16, 1000]),
            l => panic!("{l:?}"),
        }
        assert_eq!(
            mpls(&with(&[0x60])).unwrap().inner,
            Inner::EtherType(0x86dd)
        );
        let pw = with(&[0, 0, 0, 0, 0xee]);
        let cw = mpls(&pw).unwrap();
        assert_eq!((cw.inner, cw.data), (Inner::Ethernet, &[0xee][..]));
        assert_eq!(mpls(&with(&[0x10, 0, 0, 0])).unwrap().inner, Inner::Other);
        let mut eth = vec![0x22; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(mpls(&with(&eth)).unwrap().inner, Inner::Ethernet);
        eth[12] = 0x99;
        assert_eq!(mpls(&with(&eth)).unwrap().inner, Inner::Other);
        let a = Anomaly::MplsHeaderInvalid;
        assert_eq!(mpls(&entry(16, false)), Err(err(a, SHORT)));
        assert_eq!(mpls(&h), Err(err(a, SHORT)));
    }

    #[test]
    fn pppoe_session() {
        let p = pppoe(&[0x11, 0, 0x12, 0x34, 0, 3, 0x00, 0x21, 0x45, 0, 0]).unwrap();
        assert_eq!(p.layer, Layer::Pppoe { session: 0x1234 });
        assert_eq!((p.inner, p.data), (Inner::EtherType(0x0800), &[0x45][..]));
        let p = pppoe(&[0x11, 0, 0, 1, 0, 2, 0x57, 0x60]).unwrap();
        assert_eq!((p.inner, p.data), (Inner::EtherType(0x86dd), &[0x60][..]));
        assert_eq!(
            pppoe(&[0x11, 0, 0, 1, 0, 2, 0xc0, 0x21]).unwrap().inner,
            Inner::Other
        );
        let a = Anomaly::PppoeHeaderInvalid;
        assert_eq!(
            pppoe(&[0x11, 0x09, 0, 1, 0, 2, 0, 0x21]),
            Err(err(a, !SHORT))
        );
        assert_eq!(pppoe(&[0x11, 0, 0, 1]), Err(err(a, SHORT)));
    }

    #[test]
    fn key_is_the_same_in_both_directions_and_leaves_mpls_out() {
        let there = Layer::Vxlan {
            vni: 42,
            outer: outer(),
        };
        let back = Layer::Vxlan {
            vni: 42,
            outer: Outer {
                src: outer().dst,
                dst: outer().src,
            },
        };
        assert_eq!(there.key_part(), back.key_part());
        assert_eq!(
            Layer::Mpls {
                labels: Labels::default()
            }
            .key_part(),
            None
        );
        assert_eq!(there.to_string(), "vxlan 42 192.0.2.1→192.0.2.2");
        assert_eq!(
            serde_json::to_string(&there).unwrap(),
            r#"{"kind":"vxlan","vni":42,"outer_src":"192.0.2.1","outer_dst":"192.0.2.2"}"#
        );
    }
}
