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
pub mod partition;
pub mod write;

pub(crate) use file::{damage_warning, Layout, OwnedPacket, Record, CUT_SHORT, READ_ERROR};
pub use file::{Chunk, FileSource, InputName};
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
    /// The input it came from and its number there.
    pub origin: Origin,
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
        self.cut_bytes() > 0
    }

    /// Bytes of the packet on the wire that the snap length cut off.
    pub fn cut_bytes(&self) -> u32 {
        let captured = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.orig_len.saturating_sub(captured)
    }
}

/// Where a packet came from: its input (in command-line order) and its 1-based number in
/// that input (Wireshark's frame number when the file is opened alone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Origin {
    pub input: u32,
    pub packet: u64,
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
    /// 16 hex digits naming the input across runs: a hash of its name and first bytes.
    pub fingerprint: String,
    pub format: &'static str,
    pub packets: u64,
    /// Bytes of the file consumed (headers included).
    pub bytes: u64,
    /// Distinct link types of the interfaces that carried packets.
    pub link_types: Vec<LinkType>,
    /// Problems with the file itself (cut short, corrupt block): analysis covers what came before.
    pub warnings: Vec<String>,
}

/// 16 hex digits naming an input across runs: a hash (FNV-1a, stable across versions) of its
/// name and its first 4 KiB, which hold its first packets' times.
pub fn fingerprint(name: &str, start: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = name
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(start.iter().take(4096));
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Where `part` lies in `whole` (start and end offsets), when it is a slice of it: how a
/// packet borrowed from an input held in memory is found again by another thread, and a
/// decoded layer in a buffer the decoder keeps. An empty part lies anywhere: at 0.
pub fn place(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    if part.is_empty() {
        return Some((0, 0));
    }
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some((start, end))
}

impl CaptureError {
    /// The input the error is about.
    pub fn input(&self) -> String {
        match self {
            CaptureError::Open { path, .. } => path.display().to_string(),
            CaptureError::Empty { name }
            | CaptureError::NotACapture { name }
            | CaptureError::Corrupt { name, .. }
            | CaptureError::Read { name, .. } => name.clone(),
        }
    }
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
