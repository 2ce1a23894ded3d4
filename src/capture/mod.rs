//! Packet sources: pcap and pcapng files (several at once, merged by time), standard input,
//! and (feature `live`) a network interface through libpcap.
//!
//! Contract: [`Capture::next_packet`] yields every packet of every input exactly once, in
//! timestamp order across files (ties keep file order, and within a file the file's own order
//! is kept), each with its link type, capture time in nanoseconds, captured bytes and original
//! length. pcapng Decryption Secrets Blocks are collected as [`DecryptionSecret`]s.
//!
//! A file that cannot be opened or is not a capture is an `Err` at [`Capture::open`]. A file
//! cut short or corrupted later is not: everything before the damage is delivered and a
//! warning is recorded in its [`InputSummary`].

mod file;
#[cfg(feature = "live")]
pub mod live;
mod merge;
pub mod write;

pub use file::{FileSource, InputName};
pub use merge::Capture;

use crate::Timestamp;
use serde::Serialize;
use std::path::PathBuf;

/// Link-layer header type of an interface (tcpdump.org's LINKTYPE_ values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte address family in the capturing host's order.
    Null,
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_RAW (101; also 12 and 14 on some BSDs): IPv4 or IPv6 by the version nibble.
    Raw,
    /// LINKTYPE_LOOP (108): OpenBSD loopback, address family in network order.
    Loop,
    /// LINKTYPE_LINUX_SLL (113): Linux cooked capture v1.
    LinuxSll,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL2 (276): Linux cooked capture v2 (`tcpdump -i any`).
    LinuxSll2,
    /// Any other value, kept so it can be named in the report.
    Other(i32),
}

impl LinkType {
    /// The LINKTYPE_ number to write in a capture file.
    pub fn linktype(self) -> i32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(v) => v,
        }
    }

    pub fn from_linktype(value: i32) -> Self {
        match value {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// One captured packet, borrowed from the capture's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// 1-based position in the merged packet order (Wireshark's frame number for one file).
    pub index: u64,
    /// Index of the input it came from, in command-line order.
    pub input: usize,
    pub ts: Timestamp,
    pub link: LinkType,
    /// Captured bytes: at most `orig_len`, fewer when the snap length cut the packet.
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
}

impl RawPacket<'_> {
    /// True when the capture kept fewer bytes than were on the wire.
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u64) < u64::from(self.orig_len)
    }
}

/// Key material embedded in a pcapng Decryption Secrets Block.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptionSecret {
    /// Secrets type, e.g. `0x544c534b` ("TLSK") for an NSS key log.
    pub secrets_type: u32,
    pub data: Vec<u8>,
}

impl DecryptionSecret {
    pub const TLS_KEY_LOG: u32 = 0x544c_534b;
}

impl std::fmt::Debug for DecryptionSecret {
    // Secrets never reach any output, including debug prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DecryptionSecret {{ type: {:#x}, {} bytes }}",
            self.secrets_type,
            self.data.len()
        )
    }
}

/// What was read from one input.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputSummary {
    pub name: String,
    pub format: &'static str,
    pub packets: u64,
    /// Bytes of the file consumed (headers included).
    pub bytes: u64,
    /// Distinct link types of the interfaces that carried packets.
    pub link_types: Vec<LinkType>,
    /// Problems with the file itself (cut short, corrupt block): analysis covers what came before.
    pub warnings: Vec<String>,
}

/// Why an input could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: empty file")]
    Empty { name: String },
    #[error("{name}: not a pcap or pcapng file")]
    NotACapture { name: String },
    #[error("{name}: {what} at byte {offset}")]
    Corrupt {
        name: String,
        offset: u64,
        what: String,
    },
    #[error("{name}: read error")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
}
