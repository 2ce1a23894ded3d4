//! One pcap or pcapng input, read in chunks whose blocks are parsed where they lie.
//!
//! `pcap-parser`'s slice parsers do the block parsing; this file reads the input in chunks
//! of a few MiB (a block cut by a chunk's end moves, alone, to the start of the next), keeps
//! the per-section interface table (link type, timestamp resolution and offset per
//! interface), normalises timestamps, and turns the parser's error states into either "end
//! of input with a warning" or, when nothing at all could be read, a [`CaptureError`].
//!
//! Packets are not copied out of their chunk: a packet is a place in it, and chunks are
//! shared (reference-counted) with the threads that analyse packets (`crate::pipeline`),
//! and reused once they are done. Memory maps were measured and not kept: a map makes the
//! parser wait for memory once per packet (the kernel's copy into a chunk streams), and its
//! pages count in the process's resident memory, up to the size of the file
//! (`docs/performance.md`).

use super::{CaptureError, DecryptionSecret, InputSummary, LinkType};
use crate::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputName {
    Path(PathBuf),
    /// `-` on the command line.
    Stdin,
}

impl InputName {
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            InputName::Stdin
        } else {
            InputName::Path(PathBuf::from(arg))
        }
    }

    pub fn display(&self) -> String {
        match self {
            InputName::Path(p) => p.display().to_string(),
            InputName::Stdin => "<stdin>".to_string(),
        }
    }
}

/// A packet read from an input: its fields, and where its bytes lie in the input's current
/// chunk ([`FileSource::chunk`]).
#[derive(Clone, Debug, Default)]
pub struct OwnedPacket {
    pub ts: Timestamp,
    pub link: Option<LinkType>,
    /// Start and end of the bytes in the chunk.
    pub at: (usize, usize),
    pub orig_len: u32,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset_secs: i64,
}

/// Everything but the reader, so a block borrowed from the reader can update it.
struct State {
    /// Byte order of the current pcapng section.
    big_endian: bool,
    /// Interfaces of the current pcapng section, or the single pseudo-interface of a pcap.
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    summary: InputSummary,
    secrets: Vec<DecryptionSecret>,
}

/// A piece of an input's bytes, shared with the threads that take packets out of it.
pub type Chunk = Arc<Vec<u8>>;

type FrameParser =
    fn(
        &[u8],
    ) -> pcap_parser::nom::IResult<&[u8], pcap_parser::LegacyPcapBlock<'_>, PcapError<&[u8]>>;

/// Bytes read per chunk. Blocks are parsed where they lie in a chunk and packets point into
/// it, so a chunk is never copied, only its unparsed tail when the next one is read.
const CHUNK: usize = 2 << 20;

/// The first four bytes, read little-endian, of the files [`FileSource`] opens (pcap-parser's
/// tests): pcap in either byte order, with micro- or nanosecond times; the modified pcap of
/// old Linux patches; pcapng.
pub(crate) const MAGICS: [u32; 6] = [
    0xa1b2_c3d4,
    0xd4c3_b2a1,
    0xa1b2_3c4d,
    0x4d3c_b2a1,
    0xa1b2_cd34,
    0x0a0d_0d0a,
];

/// One capture input.
pub struct FileSource {
    input: Box<dyn Read + Send>,
    /// The bytes being parsed; `chunk[pos..]` is not parsed yet.
    chunk: Chunk,
    pos: usize,
    /// Chunks read before, reused once nobody else holds them.
    spare: Vec<Chunk>,
    eof: bool,
    /// How a legacy pcap's records are framed; `None` for pcapng.
    frame: Option<Framing>,
    state: State,
    max_block: usize,
    chunk_size: usize,
    done: bool,
    damage: Option<(u64, String)>,
    /// Where the block of the last packet read starts in the input.
    packet_at: u64,
}

impl FileSource {
    /// Opens a file or standard input, and checks that it is a capture.
    pub fn open(name: &InputName, max_block: usize) -> Result<Self, CaptureError> {
        match name {
            InputName::Path(path) => {
                let file = std::fs::File::open(path).map_err(|source| CaptureError::Open {
                    path: path.clone(),
                    source,
                })?;
                Self::from_reader(name.display(), file, max_block)
            }
            InputName::Stdin => Self::from_reader(name.display(), std::io::stdin(), max_block),
        }
    }

    pub fn from_reader<R: Read + Send + 'static>(
        name: String,
        reader: R,
        max_block: usize,
    ) -> Result<Self, CaptureError> {
        Self::with_chunks(name, reader, max_block, CHUNK)
    }

    /// `from_reader`, reading `chunk_size` bytes at a time (tests cut blocks everywhere).
    pub fn with_chunks<R: Read + Send + 'static>(
        name: String,
        reader: R,
        max_block: usize,
        chunk_size: usize,
    ) -> Result<Self, CaptureError> {
        let chunk_size = chunk_size.max(1);
        let mut input: Box<dyn Read + Send> = Box::new(reader);
        let first_size = chunk_size.max(FIRST_READ);
        let mut first = Vec::with_capacity(first_size);
        let eof =
            fill(&mut input, &mut first, first_size).map_err(|source| CaptureError::Read {
                name: name.clone(),
                source,
            })?;
        if first.is_empty() {
            return Err(CaptureError::Empty { name });
        }
        // The same test, on as many bytes, as pcap-parser's `create_reader`.
        let frame = if pcap_parser::pcapng::parse_sectionheaderblock(&first).is_ok() {
            None
        } else {
            let Ok((_, h)) = pcap_parser::pcap::parse_pcap_header(&first) else {
                return Err(CaptureError::NotACapture { name });
            };
            let (parse, big_endian, header): (FrameParser, _, _) = if h.is_modified_format() {
                (pcap_parser::pcap::parse_pcap_frame_modified, false, 24)
            } else if h.is_bigendian() {
                (pcap_parser::pcap::parse_pcap_frame_be, true, 16)
            } else {
                (pcap_parser::pcap::parse_pcap_frame, false, 16)
            };
            Some(Framing {
                parse,
                big_endian,
                header,
                snaplen: h.snaplen,
            })
        };
        let fingerprint = super::fingerprint(&name, &first);
        let state = State {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp::default(),
            summary: InputSummary {
                name,
                fingerprint,
                ..InputSummary::default()
            },
            secrets: Vec::new(),
        };
        Ok(Self::reading(
            input, first, eof, frame, state, max_block, chunk_size,
        ))
    }

    /// A source whose first chunk has been read.
    fn reading(
        input: Box<dyn Read + Send>,
        first: Vec<u8>,
        eof: bool,
        frame: Option<Framing>,
        state: State,
        max_block: usize,
        chunk_size: usize,
    ) -> Self {
        FileSource {
            input,
            chunk: Arc::new(first),
            pos: 0,
            spare: Vec::new(),
            eof,
            frame,
            state,
            max_block,
            chunk_size,
            done: false,
            damage: None,
            packet_at: 0,
        }
    }

    /// Reads `path` on from byte `at`, where reading in parts (`pipeline::split`) met a
    /// block that changes the reader's state: with the `layout` in force before it, the
    /// summary so far (`bytes` must be `at`), and the last packet's time.
    pub(crate) fn resume(
        path: &std::path::Path,
        layout: &Layout,
        at: u64,
        summary: InputSummary,
        last_ts: Timestamp,
    ) -> Result<Self, CaptureError> {
        use std::io::{Seek, SeekFrom};
        let name = summary.name.clone();
        let read_error = |source| CaptureError::Read {
            name: name.clone(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        file.seek(SeekFrom::Start(at)).map_err(read_error)?;
        let mut input: Box<dyn Read + Send> = Box::new(file);
        let mut first = Vec::with_capacity(CHUNK);
        let eof = fill(&mut input, &mut first, CHUNK).map_err(read_error)?;
        let (frame, big_endian, interfaces) = match &layout.kind {
            Kind::Legacy { frame, iface } => (Some(*frame), false, vec![*iface]),
            Kind::Ng {
                big_endian,
                interfaces,
            } => (None, *big_endian, interfaces.to_vec()),
        };
        let state = State {
            big_endian,
            interfaces,
            last_ts,
            summary,
            secrets: Vec::new(),
        };
        let mut source = Self::reading(input, first, eof, frame, state, layout.max_block, CHUNK);
        source.packet_at = at;
        Ok(source)
    }

    pub fn summary(&self) -> &InputSummary {
        &self.state.summary
    }

    /// Secrets read since the last call (a DSB is read just before the packet after it).
    pub fn take_secrets(&mut self) -> Vec<DecryptionSecret> {
        std::mem::take(&mut self.state.secrets)
    }

    /// The chunk the last packet read lies in.
    pub fn chunk(&self) -> &Chunk {
        &self.chunk
    }

    /// Reads the next packet into `out`. Returns false at the end of the input (including an
    /// end forced by damage, which is then recorded as a warning in the summary).
    pub fn next_packet(&mut self, out: &mut OwnedPacket) -> bool {
        while !self.done {
            match self.step(out) {
                Step::Packet => {
                    self.state.summary.packets += 1;
                    return true;
                }
                Step::Other => {}
                Step::End => self.done = true,
                Step::Damage(what) => self.stop(&what),
            }
        }
        // Done: the chunks go (a merge of many files keeps every source to the end).
        self.spare = Vec::new();
        self.chunk = Arc::default();
        self.pos = 0;
        false
    }

    fn step(&mut self, out: &mut OwnedPacket) -> Step {
        let chunk: &[u8] = &self.chunk;
        let data = chunk.get(self.pos..).unwrap_or_default();
        if data.is_empty() && self.eof {
            return Step::End;
        }
        if let Some(what) = self.state.bad_block_length(data) {
            return Step::Damage(what.into());
        }
        let parsed = match self.frame {
            Some(_) if self.state.summary.bytes == 0 => pcap_parser::pcap::parse_pcap_header(data)
                .map(|(r, h)| (r, PcapBlockOwned::from(h))),
            Some(f) => (f.parse)(data).map(|(r, b)| (r, PcapBlockOwned::from(b))),
            None if self.state.big_endian => {
                pcap_parser::pcapng::parse_block_be(data).map(|(r, b)| (r, PcapBlockOwned::from(b)))
            }
            None => {
                pcap_parser::pcapng::parse_block_le(data).map(|(r, b)| (r, PcapBlockOwned::from(b)))
            }
        };
        match judge(parsed, data.len(), self.max_block) {
            Judged::Block(len, block) => {
                let produced = self.state.take_block(block, chunk, out);
                if produced {
                    self.packet_at = self.state.summary.bytes;
                }
                self.pos += len;
                self.state.summary.bytes += len as u64;
                if produced {
                    Step::Packet
                } else {
                    Step::Other
                }
            }
            Judged::Need(_) if self.eof => Step::Damage(CUT_SHORT.into()),
            Judged::Need(wanted) => match self.next_chunk(wanted) {
                Ok(()) => Step::Other,
                Err(_) => Step::Damage(READ_ERROR.into()),
            },
            Judged::Damage(what) => Step::Damage(what),
        }
    }

    /// Moves the unparsed tail to a fresh (or recycled) chunk and reads on, so that the next
    /// block, `wanted` bytes at least, has a chance to be whole.
    fn next_chunk(&mut self, wanted: usize) -> std::io::Result<()> {
        let size = self.chunk_size.max(wanted);
        let reusable = self.spare.iter().position(|c| Arc::strong_count(c) == 1);
        let mut next = match reusable.map(|i| self.spare.swap_remove(i)) {
            Some(mut c) => {
                if let Some(v) = Arc::get_mut(&mut c) {
                    v.clear();
                }
                c
            }
            None => Arc::new(Vec::with_capacity(size)),
        };
        let Some(buf) = Arc::get_mut(&mut next) else {
            return Err(std::io::Error::other("chunk still shared"));
        };
        buf.extend_from_slice(self.chunk.get(self.pos..).unwrap_or_default());
        self.eof = fill(&mut self.input, buf, size)?;
        let old = std::mem::replace(&mut self.chunk, next);
        self.pos = 0;
        // Chunks that others still hold (packets handed to workers) wait here until they are
        // free again; the number in flight is bounded by the workers' queues and by the
        // chunks a batch may hold (`pipeline::handoff`).
        self.spare.push(old);
        self.spare.truncate(SPARE_CHUNKS);
        Ok(())
    }

    fn stop(&mut self, what: &str) {
        self.done = true;
        let offset = self.state.summary.bytes;
        self.state
            .summary
            .warnings
            .push(damage_warning(what, offset));
        self.damage = Some((offset, what.to_string()));
    }

    /// How to read this input's blocks where they lie, from the packet read last on: the
    /// format's framing and the interfaces then in force.
    pub(crate) fn layout(&self) -> Option<Layout> {
        let kind = match self.frame {
            Some(frame) => Kind::Legacy {
                frame,
                iface: *self.state.interfaces.first()?,
            },
            None => Kind::Ng {
                big_endian: self.state.big_endian,
                interfaces: self.state.interfaces.clone().into(),
            },
        };
        Some(Layout {
            kind,
            max_block: self.max_block,
            start: self.packet_at,
            last_ts: self.state.last_ts,
        })
    }

    /// Where and why reading stopped early, if the file is damaged.
    pub fn damage(&self) -> Option<&(u64, String)> {
        self.damage.as_ref()
    }
}

/// Bytes read before the format is told (what pcap-parser's `create_reader` reads first).
const FIRST_READ: usize = 256 << 10;

/// Chunks kept for reuse; beyond them, a chunk still held elsewhere is left to its holders.
const SPARE_CHUNKS: usize = 16;

/// Reads into `buf` until it holds `size` bytes or the input ends; true at the end.
/// (`read_to_end` fills the spare capacity without zeroing it first.)
fn fill(input: &mut Box<dyn Read + Send>, buf: &mut Vec<u8>, size: usize) -> std::io::Result<bool> {
    let want = size.saturating_sub(buf.len());
    buf.reserve(want);
    let got = input.by_ref().take(want as u64).read_to_end(buf)?;
    Ok(got < want)
}

/// Why reading stops where a block is cut by the end of the input.
pub(crate) const CUT_SHORT: &str = "file cut short inside a block";
/// Why reading stops where the input cannot be read.
pub(crate) const READ_ERROR: &str = "read error";

/// The warning of an input whose reading stopped at `offset` for `what`.
pub(crate) fn damage_warning(what: &str, offset: u64) -> String {
    format!("{what} at byte {offset}; analysis covers the packets before it")
}

/// What a block parser's answer means for the reader.
enum Judged<T> {
    /// A block of this many bytes.
    Block(usize, T),
    /// The block needs this many bytes in all (within the limit).
    Need(usize),
    Damage(String),
}

fn judge<T>(
    parsed: pcap_parser::nom::IResult<&[u8], T, PcapError<&[u8]>>,
    available: usize,
    max_block: usize,
) -> Judged<T> {
    let too_large = || Judged::Damage(format!("block larger than the {max_block} byte limit"));
    match parsed {
        Ok((rest, block)) => {
            let len = available - rest.len();
            if len > max_block {
                return too_large();
            }
            Judged::Block(len, block)
        }
        Err(pcap_parser::nom::Err::Incomplete(needed)) => {
            let wanted = match needed {
                pcap_parser::nom::Needed::Size(n) => available.saturating_add(n.get()),
                pcap_parser::nom::Needed::Unknown => available + 1,
            };
            if wanted > max_block {
                return too_large();
            }
            Judged::Need(wanted)
        }
        Err(_) => Judged::Damage("corrupt block".into()),
    }
}

/// How a legacy pcap's records are framed: the parser (by byte order and variant), and what
/// it parses, for [`Layout::plausible`].
#[derive(Clone, Copy)]
struct Framing {
    parse: FrameParser,
    big_endian: bool,
    /// Bytes of a record's header: 16, or 24 in the modified format of old Linux patches.
    header: usize,
    /// The file header's snap length: no record of a sane writer captures more.
    snaplen: u32,
}

/// How an input's blocks are read where they lie, by any thread (`pipeline::split`), with
/// the rules and words of [`FileSource`], from a place where the format's framing and the
/// interfaces in force are known ([`FileSource::layout`]).
#[derive(Clone)]
pub(crate) struct Layout {
    kind: Kind,
    max_block: usize,
    /// Where the block of the packet read last (when the layout was taken) starts.
    pub start: u64,
    /// That packet's time.
    pub last_ts: Timestamp,
}

#[derive(Clone)]
enum Kind {
    Legacy {
        frame: Framing,
        iface: Interface,
    },
    /// A pcapng section's byte order and interfaces.
    Ng {
        big_endian: bool,
        interfaces: Arc<[Interface]>,
    },
}

/// One block, as [`Layout::block`] read it.
pub(crate) enum Record<'a> {
    /// A packet; `len` is the block's length.
    Packet {
        len: usize,
        link: LinkType,
        ts: Timestamp,
        data: &'a [u8],
        orig_len: u32,
    },
    /// A block of this length that is not a packet and changes nothing a reader keeps.
    Skip(usize),
    /// A block that changes what the reader keeps (a section, an interface, secrets, a
    /// packet that takes the time of the one before or names an undeclared interface):
    /// reading on from here needs every block before it.
    Stateful,
    /// The block needs this many bytes in all (within the limit).
    Need(usize),
    /// Reading must stop here, for this reason (as [`FileSource`] words it).
    Damage(String),
}

/// pcapng block types (pcapng §11.1).
mod block_type {
    pub const INTERFACE: u32 = 1;
    pub const OBSOLETE_PACKET: u32 = 2;
    pub const SIMPLE_PACKET: u32 = 3;
    pub const NAME_RESOLUTION: u32 = 4;
    pub const INTERFACE_STATISTICS: u32 = 5;
    pub const ENHANCED_PACKET: u32 = 6;
    pub const SYSTEMD_JOURNAL: u32 = 9;
    pub const DECRYPTION_SECRETS: u32 = 10;
    pub const CUSTOM: u32 = 0x0000_0bad;
    pub const CUSTOM_NOT_COPIED: u32 = 0x4000_0bad;
    pub const SECTION_HEADER: u32 = 0x0a0d_0d0a;
}

impl Layout {
    /// The block at the start of `data`.
    pub(crate) fn block<'a>(&self, data: &'a [u8]) -> Record<'a> {
        match &self.kind {
            Kind::Legacy { frame, iface } => {
                match judge((frame.parse)(data), data.len(), self.max_block) {
                    Judged::Block(len, rec) => Record::Packet {
                        len,
                        link: iface.link,
                        ts: Timestamp::from_parts(
                            i64::from(rec.ts_sec),
                            u64::from(rec.ts_usec),
                            iface.units,
                        ),
                        data: rec.data,
                        orig_len: trusted_orig_len(rec.origlen, rec.data),
                    },
                    Judged::Need(n) => Record::Need(n),
                    Judged::Damage(what) => Record::Damage(what),
                }
            }
            Kind::Ng {
                big_endian,
                interfaces,
            } => {
                // As `FileSource::step` checks before parsing.
                if let Some(what) = bad_ng_block_length(data, *big_endian) {
                    return Record::Damage(what.into());
                }
                let parsed = if *big_endian {
                    pcap_parser::pcapng::parse_block_be(data)
                } else {
                    pcap_parser::pcapng::parse_block_le(data)
                };
                match judge(parsed, data.len(), self.max_block) {
                    Judged::Block(len, Block::EnhancedPacket(epb)) => {
                        match enhanced_packet(&epb, interfaces) {
                            Some((iface, ts, data)) => Record::Packet {
                                len,
                                link: iface.link,
                                ts,
                                data,
                                orig_len: trusted_orig_len(epb.origlen, data),
                            },
                            None => Record::Stateful,
                        }
                    }
                    Judged::Block(
                        _,
                        Block::SectionHeader(_)
                        | Block::InterfaceDescription(_)
                        | Block::DecryptionSecrets(_)
                        | Block::SimplePacket(_),
                    ) => Record::Stateful,
                    Judged::Block(len, _) => Record::Skip(len),
                    Judged::Need(n) => Record::Need(n),
                    Judged::Damage(what) => Record::Damage(what),
                }
            }
        }
    }

    /// The length of the block at the start of `data`, and the seconds of its time if it
    /// has one, if its header looks right, read without its data (to find a block boundary
    /// without reading what comes before: a guess, checked later). `None` when it does not
    /// look right, or `data` is shorter than a header.
    ///
    /// A legacy pcap record: microseconds (or nanoseconds) within their second, a captured
    /// length not zero (so that a run of zeros in a payload is not a chain of records), not
    /// above the original length, the snap length or the limit. A pcapng block: a known
    /// type, a length of at least 12, a multiple of 4, within the limit, and repeated at
    /// its end (when `data` reaches it).
    pub(crate) fn plausible(&self, data: &[u8]) -> Option<(usize, Option<u32>)> {
        let big_endian = match &self.kind {
            Kind::Legacy { frame, .. } => frame.big_endian,
            Kind::Ng { big_endian, .. } => *big_endian,
        };
        let word = |at: usize| {
            let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        match &self.kind {
            Kind::Legacy { frame, iface } => {
                let (secs, usec, caplen, origlen) = (word(0)?, word(4)?, word(8)?, word(12)?);
                let len = frame.header.checked_add(caplen as usize)?;
                let snaplen = match frame.snaplen {
                    0 => u32::MAX,
                    n => n,
                };
                (data.len() >= frame.header
                    && u64::from(usec) < iface.units
                    && caplen > 0
                    && caplen <= origlen
                    && caplen <= snaplen
                    && len <= self.max_block)
                    .then_some((len, Some(secs)))
            }
            Kind::Ng { .. } => {
                use block_type::*;
                let (kind, len) = (word(0)?, word(4)?);
                let known = matches!(
                    kind,
                    INTERFACE
                        | OBSOLETE_PACKET
                        | SIMPLE_PACKET
                        | NAME_RESOLUTION
                        | INTERFACE_STATISTICS
                        | ENHANCED_PACKET
                        | SYSTEMD_JOURNAL
                        | DECRYPTION_SECRETS
                        | CUSTOM
                        | CUSTOM_NOT_COPIED
                        | SECTION_HEADER
                );
                let n = len as usize;
                let trailer = n.checked_sub(4).and_then(word);
                (known
                    && n >= 12
                    && n % 4 == 0
                    && n <= self.max_block
                    && trailer.is_none_or(|t| t == len))
                .then_some((n, None))
            }
        }
    }

    /// Bytes of a block's header, the least a plausible one needs.
    pub(crate) fn header(&self) -> usize {
        match &self.kind {
            Kind::Legacy { frame, .. } => frame.header,
            Kind::Ng { .. } => 8,
        }
    }
}

/// An Enhanced Packet Block's interface, time and captured bytes; `None` when it names an
/// undeclared interface.
fn enhanced_packet<'a>(
    epb: &pcap_parser::pcapng::EnhancedPacketBlock<'a>,
    interfaces: &[Interface],
) -> Option<(Interface, Timestamp, &'a [u8])> {
    let iface = usize::try_from(epb.if_id)
        .ok()
        .and_then(|i| interfaces.get(i).copied())?;
    let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
    let units = iface.units;
    let secs = i64::try_from(raw / units)
        .unwrap_or(i64::MAX)
        .saturating_add(iface.offset_secs);
    let ts = Timestamp::from_parts(secs, raw % units, units);
    let caplen = (epb.caplen as usize).min(epb.data.len());
    Some((iface, ts, epb.data.get(..caplen).unwrap_or(epb.data)))
}

/// A writer that records an original length below the captured one is wrong; trust the
/// bytes we have.
fn trusted_orig_len(orig_len: u32, data: &[u8]) -> u32 {
    orig_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX))
}

/// pcapng block lengths are checked before pcap-parser sees them: it subtracts from
/// lengths below 12 for some block types (an overflow, found by fuzzing). pcapng §3.1: a
/// block is at least 12 bytes and a multiple of 4.
fn bad_ng_block_length(data: &[u8], big_endian: bool) -> Option<&'static str> {
    let [t0, t1, t2, t3, l0, l1, l2, l3, ..] = *data else {
        return None;
    };
    if [t0, t1, t2, t3] == [0x0a, 0x0d, 0x0d, 0x0a] {
        return None; // a Section Header Block: its byte order is not known yet
    }
    let len = if big_endian {
        u32::from_be_bytes([l0, l1, l2, l3])
    } else {
        u32::from_le_bytes([l0, l1, l2, l3])
    };
    (len < 12 || len % 4 != 0).then_some("block length below 12 or not a multiple of 4")
}

/// What reading one block gave.
enum Step {
    Packet,
    /// A block that is not a packet, or more bytes read.
    Other,
    End,
    Damage(String),
}

impl State {
    /// pcapng block lengths are checked here before pcap-parser sees them: it subtracts
    /// from lengths below 12 for some block types (an overflow, found by fuzzing).
    /// pcapng §3.1: a block is at least 12 bytes and a multiple of 4.
    fn bad_block_length(&self, data: &[u8]) -> Option<&'static str> {
        if self.summary.format != "pcapng" {
            return None;
        }
        bad_ng_block_length(data, self.big_endian)
    }

    /// Applies one block, read from `chunk`; returns true when it was a packet, put in `out`.
    fn take_block(
        &mut self,
        block: PcapBlockOwned<'_>,
        chunk: &[u8],
        out: &mut OwnedPacket,
    ) -> bool {
        match block {
            PcapBlockOwned::LegacyHeader(hdr) => {
                self.summary.format = "pcap";
                let units = if hdr.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                };
                self.interfaces = vec![Interface {
                    link: LinkType::from_linktype(hdr.network.0),
                    units,
                    offset_secs: 0,
                }];
                false
            }
            PcapBlockOwned::Legacy(rec) => {
                let Some(iface) = self.interfaces.first().copied() else {
                    return false;
                };
                let ts = Timestamp::from_parts(
                    i64::from(rec.ts_sec),
                    u64::from(rec.ts_usec),
                    iface.units,
                );
                self.emit(iface.link, ts, rec.data, rec.origlen, (chunk, out))
            }
            PcapBlockOwned::NG(block) => self.take_ng_block(block, chunk, out),
        }
    }

    fn take_ng_block(&mut self, block: Block<'_>, chunk: &[u8], out: &mut OwnedPacket) -> bool {
        match block {
            Block::SectionHeader(shb) => {
                self.summary.format = "pcapng";
                self.big_endian = shb.big_endian();
                // Interface ids are per section (pcapng §4.1).
                self.interfaces.clear();
                false
            }
            Block::InterfaceDescription(idb) => {
                self.interfaces.push(Interface {
                    link: LinkType::from_linktype(idb.linktype.0),
                    // An impossible if_tsresol falls back to the default, microseconds.
                    units: units_per_second(idb.if_tsresol).unwrap_or(1_000_000),
                    offset_secs: idb.ts_offset(),
                });
                false
            }
            Block::EnhancedPacket(epb) => {
                let Some((iface, ts, data)) = enhanced_packet(&epb, &self.interfaces) else {
                    self.warn_once("packet on an undeclared interface skipped");
                    return false;
                };
                self.emit(iface.link, ts, data, epb.origlen, (chunk, out))
            }
            Block::SimplePacket(spb) => {
                // No timestamp in an SPB (pcapng §4.4): keep the previous packet's time.
                let Some(iface) = self.interfaces.first().copied() else {
                    self.warn_once("packet on an undeclared interface skipped");
                    return false;
                };
                let caplen = (spb.origlen as usize).min(spb.data.len());
                let data = spb.data.get(..caplen).unwrap_or(spb.data);
                self.emit(iface.link, self.last_ts, data, spb.origlen, (chunk, out))
            }
            Block::DecryptionSecrets(dsb) => {
                let len = (dsb.secrets_len as usize).min(dsb.data.len());
                self.secrets.push(DecryptionSecret {
                    secrets_type: dsb.secrets_type.0,
                    data: dsb.data.get(..len).unwrap_or(dsb.data).to_vec(),
                });
                false
            }
            _ => false,
        }
    }

    fn emit(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
        (chunk, out): (&[u8], &mut OwnedPacket),
    ) -> bool {
        self.last_ts = ts;
        if !self.summary.link_types.contains(&link) {
            self.summary.link_types.push(link);
        }
        out.ts = ts;
        out.link = Some(link);
        // `data` is a slice of `chunk` by construction (the parsers borrow their input).
        out.at = super::place(chunk, data).unwrap_or_default();
        out.orig_len = trusted_orig_len(orig_len, data);
        true
    }

    fn warn_once(&mut self, what: &str) {
        if !self.summary.warnings.iter().any(|w| w == what) {
            self.summary.warnings.push(what.to_string());
        }
    }
}

/// Timestamp units per second for a pcapng `if_tsresol` value (pcapng §4.2): a power of 10,
/// or of 2 when the high bit is set. Not `InterfaceDescriptionBlock::ts_resolution`:
/// pcap-parser 0.17 rejects every power-of-2 resolution (it range-checks the byte with the
/// flag bit still set).
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 != 0 {
        1u64.checked_shl(exp)
    } else {
        10u64.checked_pow(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet as read, with its bytes.
    struct Pkt {
        ts: Timestamp,
        link: Option<LinkType>,
        data: Vec<u8>,
        orig_len: u32,
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<Pkt>, FileSource) {
        let mut src =
            FileSource::from_reader("t".into(), std::io::Cursor::new(bytes), 1 << 20).unwrap();
        let mut out = Vec::new();
        let mut p = OwnedPacket::default();
        while src.next_packet(&mut p) {
            out.push(Pkt {
                ts: p.ts,
                link: p.link,
                data: src.chunk()[p.at.0..p.at.1].to_vec(),
                orig_len: p.orig_len,
            });
        }
        (out, src)
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = (body.len() + 12) as u32;
        let mut v = kind.to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    fn shb() -> Vec<u8> {
        let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0a0d_0d0a, &b)
    }

    fn idb(linktype: u16, options: &[u8]) -> Vec<u8> {
        let mut b = linktype.to_le_bytes().to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(options);
        block(1, &b)
    }

    fn epb(if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut b = if_id.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        block(6, &b)
    }

    /// Blocks cut by a chunk's end anywhere read the same as whole ones, in pcap and pcapng.
    #[test]
    fn chunk_boundaries_anywhere() {
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        pcap.extend_from_slice(&[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        let mut ng = shb();
        ng.extend(idb(1, &[]));
        for i in 0..1500u32 {
            let data: Vec<u8> = (0..(i % 1500) + 1).map(|b| (b ^ i) as u8).collect();
            for (f, rec) in [
                (&mut pcap, {
                    let mut r = i.to_le_bytes().to_vec();
                    r.extend_from_slice(&0u32.to_le_bytes());
                    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
                    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
                    r.extend_from_slice(&data);
                    r
                }),
                (&mut ng, epb(0, u64::from(i), &data)),
            ] {
                f.extend(rec);
            }
        }
        for file in [pcap, ng] {
            assert!(file.len() > 2 * FIRST_READ);
            let read = |chunk: usize| {
                let mut src = FileSource::with_chunks(
                    "t".into(),
                    std::io::Cursor::new(file.clone()),
                    1 << 20,
                    chunk,
                )
                .unwrap();
                let mut p = OwnedPacket::default();
                let mut out = Vec::new();
                while src.next_packet(&mut p) {
                    out.push((p.ts, src.chunk()[p.at.0..p.at.1].to_vec()));
                }
                assert!(src.summary().warnings.is_empty(), "{:?}", src.summary());
                out
            };
            let whole = read(file.len());
            assert_eq!(whole.len(), 1500);
            for chunk in [1, 7, 64, 1499, 4096, 65536] {
                assert!(read(chunk) == whole, "chunk {chunk}");
            }
        }
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(units_per_second(6), Some(1_000_000));
        assert_eq!(units_per_second(9), Some(1_000_000_000));
        assert_eq!(units_per_second(0x80 | 10), Some(1024));
        assert_eq!(units_per_second(0x80 | 63), Some(1 << 63));
        assert_eq!(units_per_second(0x80 | 64), None);
        assert_eq!(units_per_second(20), None);
    }

    #[test]
    fn big_endian_microsecond_pcap() {
        let mut f = 0xa1b2_c3d4u32.to_be_bytes().to_vec();
        f.extend_from_slice(&[
            0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 101,
        ]);
        f.extend_from_slice(&10u32.to_be_bytes());
        f.extend_from_slice(&250_000u32.to_be_bytes());
        f.extend_from_slice(&3u32.to_be_bytes());
        f.extend_from_slice(&9u32.to_be_bytes());
        f.extend_from_slice(&[0x45, 0, 0]);
        let (pkts, src) = read_all(f);
        assert_eq!(pkts.len(), 1);
        assert_eq!(pkts[0].ts, Timestamp(10_250_000_000));
        assert_eq!(pkts[0].link, Some(LinkType::Raw));
        assert_eq!((pkts[0].data.len(), pkts[0].orig_len), (3, 9));
        assert_eq!(src.summary().format, "pcap");
    }

    #[test]
    fn pcapng_interfaces_resolutions_offsets_and_sections() {
        let mut f = shb();
        // Interface 0: Ethernet, default microseconds. Interface 1: raw IP, 2^-10 s units,
        // if_tsoffset 100 s.
        f.extend(idb(1, &[]));
        let mut opts = vec![9, 0, 1, 0, 0x80 | 10, 0, 0, 0];
        opts.extend_from_slice(&[14, 0, 8, 0]);
        opts.extend_from_slice(&100i64.to_le_bytes());
        opts.extend_from_slice(&[0, 0, 0, 0]);
        f.extend(idb(101, &opts));
        f.extend(epb(0, 1_500_000, &[1, 2, 3]));
        f.extend(epb(1, 2048 + 512, &[0x45]));
        f.extend(block(0x0bad_0bad, &[1, 2, 3, 4])); // unknown block: skipped
        f.extend(epb(7, 0, &[9])); // undeclared interface: skipped with a warning
                                   // A new section starts with no interfaces; a simple packet block keeps the last time.
        f.extend(shb());
        f.extend(idb(228, &[]));
        let mut spb = 1u32.to_le_bytes().to_vec();
        spb.extend_from_slice(&[0x45, 0, 0, 0]);
        f.extend(block(3, &spb));
        let (pkts, src) = read_all(f);
        assert_eq!(pkts.len(), 3);
        assert_eq!(pkts[0].ts, Timestamp(1_500_000_000));
        assert_eq!(pkts[0].link, Some(LinkType::Ethernet));
        assert_eq!(pkts[1].ts, Timestamp(102_500_000_000));
        assert_eq!(pkts[1].link, Some(LinkType::Raw));
        assert_eq!(pkts[2].link, Some(LinkType::Ipv4));
        assert_eq!(pkts[2].ts, pkts[1].ts);
        assert_eq!(pkts[2].data, vec![0x45]);
        assert_eq!(
            src.summary().warnings,
            vec!["packet on an undeclared interface skipped"]
        );
    }

    /// Found by fuzzing (fuzz/regressions/capture_file/pcapng-process-information-block-
    /// length-below-12): pcap-parser subtracts 12 from a Process Information Block's length
    /// without checking it.
    #[test]
    fn pcapng_block_length_below_twelve_is_corrupt_not_a_panic() {
        let mut f = shb();
        f.extend(idb(1, &[]));
        f.extend(epb(0, 1, &[1]));
        f.extend_from_slice(&0x0000_0008u32.to_le_bytes()); // process information block
        f.extend_from_slice(&8u32.to_le_bytes());
        f.extend_from_slice(&[0; 16]);
        let (pkts, src) = read_all(f);
        assert_eq!(pkts.len(), 1);
        assert!(
            src.summary().warnings[0].contains("block length"),
            "{:?}",
            src.summary().warnings
        );
    }

    /// Skipped blocks are warnings, not damage: such a file opens (with no packets).
    #[test]
    fn skipped_packets_only_is_not_an_error() {
        let mut f = shb();
        f.extend(epb(3, 0, &[1]));
        let src = FileSource::from_reader("t".into(), std::io::Cursor::new(f), 1 << 20).unwrap();
        let cap = super::super::Capture::from_sources(vec![src]).unwrap();
        assert_eq!(cap.summaries()[0].warnings.len(), 1);
    }

    #[test]
    fn oversized_block_stops_with_a_warning() {
        let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[
            2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
        ]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend(vec![0; 300 << 10]);
        let (pkts, src) = read_all(f);
        assert!(pkts.is_empty());
        assert!(
            src.summary().warnings[0].contains("limit"),
            "{:?}",
            src.summary().warnings
        );
    }

    #[test]
    fn not_a_capture() {
        assert!(matches!(
            FileSource::from_reader(
                "x".into(),
                std::io::Cursor::new(b"GIF89a........................".to_vec()),
                1 << 20
            ),
            Err(CaptureError::NotACapture { .. })
        ));
        assert!(matches!(
            FileSource::from_reader("x".into(), std::io::Cursor::new(Vec::new()), 1 << 20),
            Err(CaptureError::Empty { .. })
        ));
    }
}
