//! One pcap or pcapng input, read as a stream with a bounded buffer.
//!
//! `pcap-parser` does the block parsing; this file keeps the per-section interface table
//! (link type, timestamp resolution and offset per interface), normalises timestamps, and
//! turns the reader's error states into either "end of input with a warning" or, when nothing
//! at all could be read, a [`CaptureError`].

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

/// A packet copied out of the reader's buffer, so that several inputs can be merged.
#[derive(Clone, Debug, Default)]
pub struct OwnedPacket {
    pub ts: Timestamp,
    pub link: Option<LinkType>,
    pub data: Vec<u8>,
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
    /// Interfaces of the current pcapng section, or the single pseudo-interface of a pcap.
    interfaces: Vec<Interface>,
    last_ts: Timestamp,
    summary: InputSummary,
    secrets: Vec<DecryptionSecret>,
}

/// A streaming reader over one capture file.
pub struct FileSource {
    reader: Box<dyn PcapReaderIterator + Send>,
    state: State,
    capacity: usize,
    max_block: usize,
    done: bool,
}

const INITIAL_BUFFER: usize = 256 << 10;

impl FileSource {
    /// Opens a file (or standard input) and checks that it is a capture.
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
        let reader = match pcap_parser::create_reader(INITIAL_BUFFER, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Empty { name }),
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    name,
                    source: std::io::Error::other("read failed"),
                })
            }
            Err(_) => return Err(CaptureError::NotACapture { name }),
        };
        Ok(FileSource {
            reader,
            state: State {
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
                summary: InputSummary {
                    name,
                    ..InputSummary::default()
                },
                secrets: Vec::new(),
            },
            capacity: INITIAL_BUFFER,
            max_block: max_block.max(INITIAL_BUFFER),
            done: false,
        })
    }

    pub fn summary(&self) -> &InputSummary {
        &self.state.summary
    }

    pub fn into_parts(self) -> (InputSummary, Vec<DecryptionSecret>) {
        (self.state.summary, self.state.secrets)
    }

    pub fn secrets(&self) -> &[DecryptionSecret] {
        &self.state.secrets
    }

    /// Reads the next packet into `out`. Returns false at the end of the input (including an
    /// end forced by damage, which is then recorded as a warning in the summary).
    pub fn next_packet(&mut self, out: &mut OwnedPacket) -> bool {
        while !self.done {
            match self.reader.next() {
                Ok((len, block)) => {
                    let produced = self.state.take_block(block, out);
                    self.reader.consume(len);
                    self.state.summary.bytes += len as u64;
                    if produced {
                        self.state.summary.packets += 1;
                        return true;
                    }
                }
                Err(PcapError::Eof) => self.done = true,
                Err(PcapError::Incomplete(_)) => {
                    if self.reader.refill().is_err() {
                        self.stop("read error");
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    let wanted = self.capacity.saturating_mul(2);
                    if wanted <= self.max_block && self.reader.grow(wanted) {
                        self.capacity = wanted;
                    } else {
                        let msg = format!("block larger than the {} byte limit", self.max_block);
                        self.stop(&msg);
                    }
                }
                Err(PcapError::UnexpectedEof) => self.stop("file cut short inside a block"),
                Err(_) => self.stop("corrupt block"),
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
    }
}

impl State {
    /// Applies one block; returns true when it was a packet, copied into `out`.
    fn take_block(&mut self, block: PcapBlockOwned<'_>, out: &mut OwnedPacket) -> bool {
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
                self.emit(iface.link, ts, rec.data, rec.origlen, out)
            }
            PcapBlockOwned::NG(block) => self.take_ng_block(block, out),
        }
    }

    fn take_ng_block(&mut self, block: Block<'_>, out: &mut OwnedPacket) -> bool {
        match block {
            Block::SectionHeader(_) => {
                self.summary.format = "pcapng";
                // Interface ids are per section (pcapng §4.1).
                self.interfaces.clear();
                false
            }
            Block::InterfaceDescription(idb) => {
                self.interfaces.push(Interface {
                    link: LinkType::from_linktype(idb.linktype.0),
                    // An impossible if_tsresol falls back to the default, microseconds.
                    units: idb.ts_resolution().unwrap_or(1_000_000),
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
                self.emit(iface.link, ts, data, epb.origlen, out)
            }
            Block::SimplePacket(spb) => {
                // No timestamp in an SPB (pcapng §4.4): keep the previous packet's time.
                let Some(iface) = self.interfaces.first().copied() else {
                    self.warn_once("packet on an undeclared interface skipped");
                    return false;
                };
                let caplen = (spb.origlen as usize).min(spb.data.len());
                let data = spb.data.get(..caplen).unwrap_or(spb.data);
                self.emit(iface.link, self.last_ts, data, spb.origlen, out)
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
        out: &mut OwnedPacket,
    ) -> bool {
        self.last_ts = ts;
        if !self.summary.link_types.contains(&link) {
            self.summary.link_types.push(link);
        }
        out.ts = ts;
        out.link = Some(link);
        out.data.clear();
        out.data.extend_from_slice(data);
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
