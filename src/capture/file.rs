//! One pcap or pcapng input: a file mapped into memory and parsed where its blocks lie, or a
//! stream (standard input, or a file that cannot be mapped) read with a bounded buffer.
//!
//! `pcap-parser` does the block parsing in both cases; this file keeps the per-section
//! interface table (link type, timestamp resolution and offset per interface), normalises
//! timestamps, and turns the parser's error states into either "end of input with a
//! warning" or, when nothing at all could be read, a [`CaptureError`]. Both readers give the
//! same packets and warnings for the same bytes (tested, and fuzzed side by side).
//!
//! Mapping saves two copies of every byte (out of the page cache into a buffer, and out of
//! the buffer into the packet), which matter when several workers each read the capture
//! (`crate::pipeline`). The risk is the usual one of maps: a file truncated by another
//! process while it is read ends the process with SIGBUS.

use super::{CaptureError, DecryptionSecret, InputSummary, LinkType};
use crate::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::io::Read;
use std::path::PathBuf;
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

/// A packet taken out of its input, so that several inputs can be merged: its bytes are
/// either where they lie in a whole-file input (`at`) or copied (`data`).
#[derive(Clone, Debug, Default)]
pub struct OwnedPacket {
    pub ts: Timestamp,
    pub link: Option<LinkType>,
    /// The bytes, when the input is a stream.
    pub data: Vec<u8>,
    /// Where the bytes are in a whole-file input ([`FileSource::bytes`]).
    pub at: Option<(usize, usize)>,
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
    /// What [`touch_ahead`] read (kept so that the reads are not optimised away).
    touched: u8,
}

/// The bytes of an input held whole in memory (a map of the file, or a buffer), shared with
/// the threads that read packets out of it.
pub type WholeInput = std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>;

type FrameParser =
    fn(
        &[u8],
    ) -> pcap_parser::nom::IResult<&[u8], pcap_parser::LegacyPcapBlock<'_>, PcapError<&[u8]>>;

enum Reader {
    Stream {
        reader: Box<dyn PcapReaderIterator + Send>,
        capacity: usize,
    },
    /// The whole input in memory (a map of the file).
    Whole {
        bytes: WholeInput,
        pos: usize,
        /// The record parser of a legacy pcap (by byte order and variant); `None` for pcapng.
        frame: Option<FrameParser>,
    },
}

/// One capture input.
pub struct FileSource {
    reader: Reader,
    state: State,
    max_block: usize,
    done: bool,
    damage: Option<(u64, String)>,
}

const INITIAL_BUFFER: usize = 256 << 10;

impl FileSource {
    /// Opens a file (mapped when it can be) or standard input, and checks that it is a capture.
    pub fn open(name: &InputName, max_block: usize) -> Result<Self, CaptureError> {
        match name {
            InputName::Path(path) => {
                let file = std::fs::File::open(path).map_err(|source| CaptureError::Open {
                    path: path.clone(),
                    source,
                })?;
                match map(&file) {
                    Some(m) => Self::from_bytes(name.display(), std::sync::Arc::new(m), max_block),
                    None => Self::from_reader(name.display(), file, max_block),
                }
            }
            InputName::Stdin => Self::from_reader(name.display(), std::io::stdin(), max_block),
        }
    }

    /// An input read as a stream.
    pub fn from_reader<R: Read + Send + 'static>(
        name: String,
        reader: R,
        max_block: usize,
    ) -> Result<Self, CaptureError> {
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Empty { name }),
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    name,
                    source: std::io::Error::other("read failed"),
                });
            }
            Err(_) => return Err(CaptureError::NotACapture { name }),
        };
        let fingerprint = super::fingerprint(&name, reader.data());
        Ok(Self::with(
            name,
            fingerprint,
            Reader::Stream {
                reader,
                capacity: INITIAL_BUFFER,
            },
            max_block.max(INITIAL_BUFFER),
        ))
    }

    /// An input whose bytes are all in memory: parsed in place, packets not copied.
    pub fn from_bytes(
        name: String,
        bytes: WholeInput,
        max_block: usize,
    ) -> Result<Self, CaptureError> {
        let all = (*bytes).as_ref();
        if all.is_empty() {
            return Err(CaptureError::Empty { name });
        }
        // The same test, in the same order, as pcap-parser's `create_reader`.
        let frame = if pcap_parser::pcapng::parse_sectionheaderblock(all).is_ok() {
            None
        } else {
            match pcap_parser::pcap::parse_pcap_header(all) {
                Ok((_, h)) if h.is_modified_format() => {
                    Some(pcap_parser::pcap::parse_pcap_frame_modified as FrameParser)
                }
                Ok((_, h)) if h.is_bigendian() => Some(pcap_parser::pcap::parse_pcap_frame_be as _),
                Ok(_) => Some(pcap_parser::pcap::parse_pcap_frame as _),
                Err(_) => return Err(CaptureError::NotACapture { name }),
            }
        };
        let fingerprint = super::fingerprint(&name, all);
        Ok(Self::with(
            name,
            fingerprint,
            Reader::Whole {
                bytes,
                pos: 0,
                frame,
            },
            max_block.max(INITIAL_BUFFER),
        ))
    }

    fn with(name: String, fingerprint: String, reader: Reader, max_block: usize) -> Self {
        FileSource {
            reader,
            state: State {
                big_endian: false,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
                summary: InputSummary {
                    name,
                    fingerprint,
                    ..InputSummary::default()
                },
                secrets: Vec::new(),
                touched: 0,
            },
            max_block,
            done: false,
            damage: None,
        }
    }

    pub fn summary(&self) -> &InputSummary {
        &self.state.summary
    }

    /// Secrets read since the last call (a DSB is read just before the packet after it).
    pub fn take_secrets(&mut self) -> Vec<DecryptionSecret> {
        std::mem::take(&mut self.state.secrets)
    }

    /// The input's bytes, when they are all in memory.
    pub fn whole(&self) -> Option<&WholeInput> {
        match &self.reader {
            Reader::Whole { bytes, .. } => Some(bytes),
            Reader::Stream { .. } => None,
        }
    }

    /// The bytes of a packet this source put `at` a place in its input.
    pub fn bytes(&self, (start, end): (usize, usize)) -> &[u8] {
        match &self.reader {
            Reader::Whole { bytes, .. } => (**bytes).as_ref().get(start..end).unwrap_or_default(),
            Reader::Stream { .. } => &[],
        }
    }

    /// Reads the next packet into `out`. Returns false at the end of the input (including an
    /// end forced by damage, which is then recorded as a warning in the summary).
    pub fn next_packet(&mut self, out: &mut OwnedPacket) -> bool {
        while !self.done {
            let step = match &mut self.reader {
                Reader::Stream { reader, capacity } => {
                    stream_step(reader, capacity, self.max_block, &mut self.state, out)
                }
                Reader::Whole { bytes, pos, frame } => whole_step(
                    (**bytes).as_ref(),
                    pos,
                    *frame,
                    self.max_block,
                    &mut self.state,
                    out,
                ),
            };
            match step {
                Step::Packet => {
                    self.state.summary.packets += 1;
                    return true;
                }
                Step::Other => {}
                Step::End => self.done = true,
                Step::Damage(what) => self.stop(&what),
            }
        }
        false
    }

    fn stop(&mut self, what: &str) {
        self.done = true;
        let offset = self.state.summary.bytes;
        self.state.summary.warnings.push(format!(
            "{what} at byte {offset}; analysis covers the packets before it"
        ));
        self.damage = Some((offset, what.to_string()));
    }

    /// Where and why reading stopped early, if the file is damaged.
    pub fn damage(&self) -> Option<&(u64, String)> {
        self.damage.as_ref()
    }
}

/// What reading one block gave.
enum Step {
    Packet,
    /// A block that is not a packet, or more bytes read.
    Other,
    End,
    Damage(String),
}

fn too_large(max_block: usize) -> Step {
    Step::Damage(format!("block larger than the {max_block} byte limit"))
}

fn stream_step(
    reader: &mut Box<dyn PcapReaderIterator + Send>,
    capacity: &mut usize,
    max_block: usize,
    state: &mut State,
    out: &mut OwnedPacket,
) -> Step {
    if let Some(what) = state.bad_block_length(reader.data()) {
        return Step::Damage(what.into());
    }
    match reader.next() {
        Ok((len, block)) => {
            let produced = state.take_block(block, None, out);
            reader.consume(len);
            state.summary.bytes += len as u64;
            if produced {
                Step::Packet
            } else {
                Step::Other
            }
        }
        Err(PcapError::Eof) => Step::End,
        Err(PcapError::Incomplete(_)) => match reader.refill() {
            Ok(()) => Step::Other,
            Err(_) => Step::Damage("read error".into()),
        },
        Err(PcapError::BufferTooSmall) => {
            let wanted = capacity.saturating_mul(2);
            if wanted <= max_block && reader.grow(wanted) {
                *capacity = wanted;
                Step::Other
            } else {
                too_large(max_block)
            }
        }
        Err(PcapError::UnexpectedEof) => Step::Damage(CUT_SHORT.into()),
        Err(_) => Step::Damage("corrupt block".into()),
    }
}

const CUT_SHORT: &str = "file cut short inside a block";

fn whole_step(
    all: &[u8],
    pos: &mut usize,
    frame: Option<FrameParser>,
    max_block: usize,
    state: &mut State,
    out: &mut OwnedPacket,
) -> Step {
    let data = all.get(*pos..).unwrap_or_default();
    if data.is_empty() {
        return Step::End;
    }
    if let Some(what) = state.bad_block_length(data) {
        return Step::Damage(what.into());
    }
    let parsed = match frame {
        Some(_) if *pos == 0 => {
            pcap_parser::pcap::parse_pcap_header(data).map(|(r, h)| (r, PcapBlockOwned::from(h)))
        }
        Some(f) => f(data).map(|(r, b)| (r, PcapBlockOwned::from(b))),
        None if state.big_endian => {
            pcap_parser::pcapng::parse_block_be(data).map(|(r, b)| (r, PcapBlockOwned::from(b)))
        }
        None => {
            pcap_parser::pcapng::parse_block_le(data).map(|(r, b)| (r, PcapBlockOwned::from(b)))
        }
    };
    match parsed {
        Ok((rest, block)) => {
            let len = data.len() - rest.len();
            // The stream reader's buffer cannot grow past `max_block`: the same bound here.
            if len > max_block {
                return too_large(max_block);
            }
            let produced = state.take_block(block, Some(all), out);
            touch_ahead(all, *pos + READ_AHEAD, len, &mut state.touched);
            *pos += len;
            state.summary.bytes += len as u64;
            if produced {
                Step::Packet
            } else {
                Step::Other
            }
        }
        Err(pcap_parser::nom::Err::Incomplete(_)) => Step::Damage(CUT_SHORT.into()),
        Err(_) => Step::Damage("corrupt block".into()),
    }
}

/// How far ahead of the block being parsed the bytes of a whole input are touched.
const READ_AHEAD: usize = 32 << 10;

/// Reads one byte per cache line of `all[from..from + len]`, so that the memory behind is
/// being loaded while the blocks before it are parsed: the parsers then find every block
/// header in cache, instead of waiting for memory once per packet (a map's pages come
/// from the page cache, far from the CPU). Safe code has no prefetch instruction; loads
/// whose results are only summed do the same, as the CPU does not wait for them.
fn touch_ahead(all: &[u8], from: usize, len: usize, sum: &mut u8) {
    let end = from.saturating_add(len).min(all.len());
    if let Some(ahead) = all.get(from..end) {
        for b in ahead.iter().step_by(64) {
            *sum = sum.wrapping_add(*b);
        }
    }
}

/// A read-only map of a regular, non-empty file; `None` when it cannot be mapped (then the
/// file is read as a stream).
#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the map is only ever read, as plain bytes that every parser treats as hostile
    // input. Another process changing the file meanwhile changes what is read (harmless
    // here); truncating it raises SIGBUS, the known cost of reading files through maps
    // (see the module documentation).
    let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    // Read front to back, once: let the kernel read ahead and drop pages behind.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

impl State {
    /// pcapng block lengths are checked here before pcap-parser sees them: it subtracts
    /// from lengths below 12 for some block types (an overflow, found by fuzzing).
    /// pcapng §3.1: a block is at least 12 bytes and a multiple of 4.
    fn bad_block_length(&self, data: &[u8]) -> Option<&'static str> {
        if self.summary.format != "pcapng" {
            return None;
        }
        let [t0, t1, t2, t3, l0, l1, l2, l3, ..] = *data else {
            return None;
        };
        if [t0, t1, t2, t3] == [0x0a, 0x0d, 0x0d, 0x0a] {
            return None; // a Section Header Block: its byte order is not known yet
        }
        let len = if self.big_endian {
            u32::from_be_bytes([l0, l1, l2, l3])
        } else {
            u32::from_le_bytes([l0, l1, l2, l3])
        };
        (len < 12 || len % 4 != 0).then_some("block length below 12 or not a multiple of 4")
    }

    /// Applies one block; returns true when it was a packet, put in `out`: where it lies in
    /// `whole`, the input's bytes when they are all in memory, else copied.
    fn take_block(
        &mut self,
        block: PcapBlockOwned<'_>,
        whole: Option<&[u8]>,
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
                self.emit(iface.link, ts, rec.data, rec.origlen, (whole, out))
            }
            PcapBlockOwned::NG(block) => self.take_ng_block(block, whole, out),
        }
    }

    fn take_ng_block(
        &mut self,
        block: Block<'_>,
        whole: Option<&[u8]>,
        out: &mut OwnedPacket,
    ) -> bool {
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
                let Some(iface) = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| self.interfaces.get(i).copied())
                else {
                    self.warn_once("packet on an undeclared interface skipped");
                    return false;
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let units = iface.units;
                let secs = i64::try_from(raw / units)
                    .unwrap_or(i64::MAX)
                    .saturating_add(iface.offset_secs);
                let ts = Timestamp::from_parts(secs, raw % units, units);
                let caplen = (epb.caplen as usize).min(epb.data.len());
                let data = epb.data.get(..caplen).unwrap_or(epb.data);
                self.emit(iface.link, ts, data, epb.origlen, (whole, out))
            }
            Block::SimplePacket(spb) => {
                // No timestamp in an SPB (pcapng §4.4): keep the previous packet's time.
                let Some(iface) = self.interfaces.first().copied() else {
                    self.warn_once("packet on an undeclared interface skipped");
                    return false;
                };
                let caplen = (spb.origlen as usize).min(spb.data.len());
                let data = spb.data.get(..caplen).unwrap_or(spb.data);
                self.emit(iface.link, self.last_ts, data, spb.origlen, (whole, out))
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
        (whole, out): (Option<&[u8]>, &mut OwnedPacket),
    ) -> bool {
        self.last_ts = ts;
        if !self.summary.link_types.contains(&link) {
            self.summary.link_types.push(link);
        }
        out.ts = ts;
        out.link = Some(link);
        out.data.clear();
        out.at = whole.and_then(|w| super::place(w, data));
        if out.at.is_none() {
            out.data.extend_from_slice(data);
        }
        // A writer that records an original length below the captured one is wrong; trust the
        // bytes we have.
        out.orig_len = orig_len.max(u32::try_from(data.len()).unwrap_or(u32::MAX));
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

    fn read_all(bytes: Vec<u8>) -> (Vec<OwnedPacket>, FileSource) {
        let mut src =
            FileSource::from_reader("t".into(), std::io::Cursor::new(bytes), 1 << 20).unwrap();
        let mut out = Vec::new();
        let mut p = OwnedPacket::default();
        while src.next_packet(&mut p) {
            out.push(p.clone());
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
