//! Link-layer headers: strip them and say which network protocol follows.
//!
//! Written here rather than taken from `pcap_parser::data`, which reads the BSD loopback family
//! in little-endian only (the field is in the capturing host's order) and does not cut the
//! payload at the captured length. Ethernet and its VLAN tags are left to `etherparse`.

use crate::capture::LinkType;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// IEEE 802.1Q.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// What follows the link header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPayload<'a> {
    /// An Ethernet II frame (possibly with VLAN tags) still to be parsed.
    Ethernet(&'a [u8]),
    /// A network-layer packet of the given EtherType.
    Network { ether_type: u16, data: &'a [u8] },
    /// A known link type carrying something other than IP (ARP, an unknown address family).
    NotIp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Shorter than the link header.
    Truncated,
    /// A link type misdirect does not decode.
    Unsupported,
}

/// Strips the link header of `data` captured on an interface of type `link`.
pub fn strip(link: LinkType, data: &[u8]) -> Result<LinkPayload<'_>, LinkError> {
    match link {
        LinkType::Ethernet => Ok(LinkPayload::Ethernet(data)),
        LinkType::Raw => match data.first().map(|b| b >> 4) {
            Some(4) => Ok(network(ETHERTYPE_IPV4, data)),
            Some(6) => Ok(network(ETHERTYPE_IPV6, data)),
            Some(_) => Ok(LinkPayload::NotIp),
            None => Err(LinkError::Truncated),
        },
        LinkType::Ipv4 => Ok(network(ETHERTYPE_IPV4, data)),
        LinkType::Ipv6 => Ok(network(ETHERTYPE_IPV6, data)),
        LinkType::Null | LinkType::Loop => {
            let (family, rest) = split::<4>(data)?;
            // LOOP is always network order; NULL is the capturing host's order. Address
            // families are small numbers, so whichever order yields one is the right one.
            let be = u32::from_be_bytes(family);
            let le = u32::from_le_bytes(family);
            let family = if link == LinkType::Loop || be < 256 {
                be
            } else {
                le
            };
            Ok(match family {
                2 => network(ETHERTYPE_IPV4, rest),
                // AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                10 | 24 | 28 | 30 => network(ETHERTYPE_IPV6, rest),
                _ => LinkPayload::NotIp,
            })
        }
        LinkType::LinuxSll => {
            // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2).
            let (hdr, rest) = split::<16>(data)?;
            Ok(cooked(
                u16::from_be_bytes([hdr[2], hdr[3]]),
                [hdr[14], hdr[15]],
                rest,
            ))
        }
        LinkType::LinuxSll2 => {
            // protocol(2) reserved(2) interface index(4) ARPHRD(2) packet type(1)
            // address length(1) address(8).
            let (hdr, rest) = split::<20>(data)?;
            Ok(cooked(
                u16::from_be_bytes([hdr[8], hdr[9]]),
                [hdr[0], hdr[1]],
                rest,
            ))
        }
        LinkType::Other(_) => Err(LinkError::Unsupported),
    }
}

fn network(ether_type: u16, data: &[u8]) -> LinkPayload<'_> {
    LinkPayload::Network { ether_type, data }
}

/// Linux cooked headers: the protocol field is an EtherType for most devices.
fn cooked(arphrd: u16, protocol: [u8; 2], rest: &[u8]) -> LinkPayload<'_> {
    const ARPHRD_NETLINK: u16 = 824;
    const ARPHRD_IEEE80211_RADIOTAP: u16 = 803;
    match arphrd {
        ARPHRD_NETLINK | ARPHRD_IEEE80211_RADIOTAP => LinkPayload::NotIp,
        _ => network(u16::from_be_bytes(protocol), rest),
    }
}

fn split<const N: usize>(data: &[u8]) -> Result<([u8; N], &[u8]), LinkError> {
    let (head, rest) = data.split_first_chunk::<N>().ok_or(LinkError::Truncated)?;
    Ok((*head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_loopback_either_byte_order() {
        let ip = [0x45u8, 0, 0, 20];
        let mut le = vec![2, 0, 0, 0];
        le.extend_from_slice(&ip);
        let mut be = vec![0, 0, 0, 30];
        be.extend_from_slice(&ip);
        assert_eq!(strip(LinkType::Null, &le), Ok(network(ETHERTYPE_IPV4, &ip)));
        assert_eq!(strip(LinkType::Null, &be), Ok(network(ETHERTYPE_IPV6, &ip)));
        assert_eq!(strip(LinkType::Loop, &be), Ok(network(ETHERTYPE_IPV6, &ip)));
    }

    #[test]
    fn cooked_v1_and_v2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        sll.push(0x60);
        assert_eq!(
            strip(LinkType::LinuxSll, &sll),
            Ok(network(ETHERTYPE_IPV6, &[0x60]))
        );
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.push(0x45);
        assert_eq!(
            strip(LinkType::LinuxSll2, &sll2),
            Ok(network(ETHERTYPE_IPV4, &[0x45]))
        );
    }

    #[test]
    fn truncated_and_unsupported() {
        assert_eq!(
            strip(LinkType::LinuxSll2, &[0; 19]),
            Err(LinkError::Truncated)
        );
        assert_eq!(strip(LinkType::Null, &[2, 0]), Err(LinkError::Truncated));
        assert_eq!(strip(LinkType::Raw, &[]), Err(LinkError::Truncated));
        assert_eq!(
            strip(LinkType::Other(147), &[1]),
            Err(LinkError::Unsupported)
        );
        assert_eq!(strip(LinkType::Raw, &[0x10]), Ok(LinkPayload::NotIp));
    }
}
