//! Live capture from a network interface through libpcap (cargo feature `live`).
//!
//! Contract: [`LiveSource::open`] opens an interface with the given options and BPF filter;
//! [`LiveSource::next_packet`] hands out the next packet as a [`RawPacket`] (indexes from 1,
//! nanosecond timestamps), or, after a short wait, nothing when none is ready, so the caller
//! can do its own work (key logs, stop conditions) between packets.
//! [`LiveSource::stats`] reports libpcap's counters. Everything captured can also be written
//! to a pcapng file that is flushed often, so an interrupted capture leaves a readable file.

use super::write::PcapNgWriter;
use super::{LinkType, RawPacket};
use crate::Timestamp;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

/// Wait when no packet is ready: bounds both the delay before a packet is seen and the
/// CPU an idle capture uses.
const IDLE_WAIT_MS: u64 = 5;

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    pub bpf: Option<String>,
    pub snaplen: i32,
    pub promiscuous: bool,
    /// Kernel buffer, bytes.
    pub buffer_size: i32,
    /// libpcap's read timeout, milliseconds (packets are read without blocking; this only
    /// bounds how long the kernel may batch them).
    pub timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: String::new(),
            bpf: None,
            snaplen: 262_144,
            promiscuous: true,
            buffer_size: 16 << 20,
            timeout_ms: 100,
        }
    }
}

/// Why live capture could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot capture on {interface}: {message}. Capturing needs root or the CAP_NET_RAW and \
         CAP_NET_ADMIN capabilities (e.g. `sudo setcap cap_net_raw,cap_net_admin=eip $(which misdirect)`)"
    )]
    Permission { interface: String, message: String },
    #[error("cannot capture on {interface}: {message}")]
    Open { interface: String, message: String },
    #[error("bad capture filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("capture on {interface} failed: {message}")]
    Read { interface: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("cannot list interfaces: {0}")]
    List(String),
}

/// libpcap's counters (pcap_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    /// Packets the capture saw (before the filter on some platforms).
    pub received: u64,
    /// Dropped because the buffer was full: the analysis did not keep up.
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
}

/// One interface, open for capture.
pub struct LiveSource {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    link: LinkType,
    index: u64,
    data: Vec<u8>,
    ts: Timestamp,
    orig_len: u32,
    writer: Option<(String, PcapNgWriter<BufWriter<File>>)>,
    unflushed: u32,
}

/// Interfaces libpcap can capture on: (name, description).
pub fn interfaces() -> Result<Vec<(String, Option<String>)>, LiveError> {
    let list = pcap::Device::list().map_err(|e| LiveError::List(e.to_string()))?;
    Ok(list.into_iter().map(|d| (d.name, d.desc)).collect())
}

impl LiveSource {
    pub fn open(opts: &LiveOptions, write: Option<&Path>) -> Result<Self, LiveError> {
        let interface = opts.interface.clone();
        let open_err = |e: pcap::Error| {
            let message = e.to_string();
            let denied = message.contains("ermission")
                || message.contains("not permitted")
                || message.contains("EPERM");
            if denied {
                LiveError::Permission {
                    interface: interface.clone(),
                    message,
                }
            } else {
                LiveError::Open {
                    interface: interface.clone(),
                    message,
                }
            }
        };
        let mut cap = pcap::Capture::from_device(opts.interface.as_str())
            .map_err(open_err)?
            .snaplen(opts.snaplen)
            .promisc(opts.promiscuous)
            .buffer_size(opts.buffer_size)
            .timeout(opts.timeout_ms)
            // Packets as they come, not in blocks: findings are printed as they happen.
            .immediate_mode(true)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(open_err)?
            // libpcap's read timeout is not honoured on every platform (Linux may block
            // until a packet comes): poll without blocking and wait here instead.
            .setnonblock()
            .map_err(open_err)?;
        if let Some(filter) = &opts.bpf {
            cap.filter(filter, true).map_err(|e| LiveError::Filter {
                filter: filter.clone(),
                message: e.to_string(),
            })?;
        }
        let link = LinkType::from_linktype(cap.get_datalink().0);
        let writer = match write {
            Some(path) => {
                let name = path.display().to_string();
                let werr = |source| LiveError::Write {
                    path: name.clone(),
                    source,
                };
                let file = File::create(path).map_err(werr)?;
                let mut w = PcapNgWriter::new(BufWriter::new(file)).map_err(werr)?;
                let linktype = u16::try_from(link.linktype()).unwrap_or(0);
                w.add_interface(linktype, opts.snaplen as u32, 9)
                    .map_err(werr)?;
                w.flush().map_err(werr)?;
                Some((name, w))
            }
            None => None,
        };
        Ok(LiveSource {
            cap,
            interface: opts.interface.clone(),
            link,
            index: 0,
            data: Vec::new(),
            ts: Timestamp::default(),
            orig_len: 0,
            writer,
            unflushed: 0,
        })
    }

    /// The next packet, or `None` when the read timeout passed without one.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                // With nanosecond precision libpcap puts nanoseconds in tv_usec.
                // time_t is narrower than i64 on some platforms.
                #[allow(clippy::useless_conversion)]
                let secs = i64::from(h.ts.tv_sec);
                self.ts = Timestamp::from_parts(secs, h.ts.tv_usec.max(0) as u64, 1_000_000_000);
                self.orig_len = h.len;
                self.data.clear();
                self.data.extend_from_slice(p.data);
                self.index += 1;
                if let Some((name, w)) = &mut self.writer {
                    w.write_packet(0, self.ts, &self.data, self.orig_len)
                        .map_err(|source| LiveError::Write {
                            path: name.clone(),
                            source,
                        })?;
                    self.unflushed += 1;
                }
                Ok(Some(RawPacket {
                    index: self.index,
                    origin: super::Origin {
                        input: 0,
                        packet: self.index,
                    },
                    ts: self.ts,
                    link: self.link,
                    data: &self.data,
                    orig_len: self.orig_len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(IDLE_WAIT_MS));
                Ok(None)
            }
            Err(e) => Err(LiveError::Read {
                interface: self.interface.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// Writes what is buffered to the `--write` file.
    pub fn flush(&mut self) -> Result<(), LiveError> {
        if let Some((name, w)) = &mut self.writer {
            if self.unflushed > 0 {
                w.flush().map_err(|source| LiveError::Write {
                    path: name.clone(),
                    source,
                })?;
                self.unflushed = 0;
            }
        }
        Ok(())
    }

    pub fn stats(&mut self) -> LiveStats {
        match self.cap.stats() {
            Ok(s) => LiveStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                interface_dropped: u64::from(s.if_dropped),
            },
            Err(_) => LiveStats::default(),
        }
    }

    pub fn packets(&self) -> u64 {
        self.index
    }
}
