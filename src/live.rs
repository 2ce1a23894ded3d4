//! `misdirect live`: the offline pipeline on packets from an interface (feature `live`).
//!
//! Contract: [`run`] captures until `--duration`, `--count`, Ctrl-C or SIGTERM; it feeds each
//! packet to the same [`Pipeline`] and [`Ledger`] as `analyze`, so the report it returns is the
//! one `analyze` would make of the same packets (plus the capture counters). While it runs it
//! prints each HTTP 421 as soon as its response is parsed, follows the key logs as they grow
//! (sessions hold a bounded amount of encrypted data until their keys appear), and keeps a
//! status line on stderr when that is a terminal.

use crate::analysis::{CaptureCounters, Ledger, Report};
use crate::capture::live::{LiveError, LiveOptions, LiveSource};
use crate::capture::{InputSummary, LinkType};
use crate::cli::{LiveArgs, ReportConfig};
use crate::pipeline::Pipeline;
use crate::proto::tls::keylog::KeyLog;
use crate::report::{Format, Style};
use crate::Timestamp;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often key logs are re-read and the status line redrawn.
const POLL: Duration = Duration::from_millis(200);
/// Longest key-log line kept while waiting for its end (a TLS 1.3 line is < 200 bytes).
const MAX_KEYLOG_LINE: usize = 4096;

/// A validated `live` invocation.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub options: LiveOptions,
    pub write: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub hold_for_keys: usize,
    pub report: ReportConfig,
}

impl LiveConfig {
    pub fn from_args(args: LiveArgs) -> Result<Self, String> {
        let interface = args
            .interface
            .ok_or("--interface is required (see --list-interfaces)")?;
        Ok(LiveConfig {
            options: LiveOptions {
                interface,
                bpf: args.bpf,
                snaplen: args.snaplen,
                promiscuous: !args.no_promiscuous,
                buffer_size: args.buffer_size,
                ..LiveOptions::default()
            },
            write: args.write,
            duration: args.duration,
            count: args.count,
            hold_for_keys: args.hold_for_keys,
            report: args.report.validate()?,
        })
    }
}

/// A key log followed as it grows: complete lines only, from where the last read stopped.
struct Follower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// New complete lines since the last call (nothing when the file does not exist yet).
    fn poll(&mut self) -> Vec<u8> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Truncated or replaced: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut fresh = Vec::new();
        if f.take(len - self.offset).read_to_end(&mut fresh).is_err() {
            return Vec::new();
        }
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                let rest = self.partial.split_off(end + 1);
                std::mem::replace(&mut self.partial, rest)
            }
            None => {
                if self.partial.len() > MAX_KEYLOG_LINE {
                    self.partial.clear();
                }
                Vec::new()
            }
        }
    }
}

/// Captures, analyses, and returns the final report.
pub fn run(config: &LiveConfig, style: Style) -> Result<Report, LiveError> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second handler (tests calling `run` twice) is refused; the first one still stops.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let mut source = LiveSource::open(&config.options, config.write.as_deref())?;
    if !config.report.quiet {
        eprintln!(
            "misdirect: capturing on {}{}; Ctrl-C stops and writes the report",
            config.options.interface,
            config
                .options
                .bpf
                .as_deref()
                .map_or(String::new(), |f| format!(" (filter: {f})"))
        );
    }
    let limits = &config.report.limits;
    let mut pipeline = Pipeline::new(limits);
    let mut ledger = Ledger::new(&KeyLog::default(), limits);
    // Without a key log to follow no key can come: sessions without keys hold nothing and
    // keep no key state.
    if !config.report.keylogs.is_empty() {
        ledger.follow_keylog(config.hold_for_keys, limits);
    }
    let found = Arc::new(std::sync::atomic::AtomicU64::new(0));
    ledger.watch(streamer(config.report.format, style, Arc::clone(&found)));
    let mut followers: Vec<Follower> = config
        .report
        .keylogs
        .iter()
        .map(|p| Follower {
            path: p.clone(),
            offset: 0,
            partial: Vec::new(),
        })
        .collect();
    let status = (!config.report.quiet && std::io::stderr().is_terminal())
        .then(indicatif::ProgressBar::new_spinner);
    let started = Instant::now();
    let mut last_poll: Option<Instant> = None;
    let mut last_ts = Timestamp::default();
    let mut bytes = 0u64;
    let mut links: Vec<LinkType> = Vec::new();
    loop {
        if last_poll.is_none_or(|t| t.elapsed() >= POLL) {
            last_poll = Some(Instant::now());
            for f in &mut followers {
                let lines = f.poll();
                if !lines.is_empty() {
                    ledger.add_keys(&lines, last_ts, pipeline.sink_states());
                }
            }
            // Under steady traffic the idle flush never comes: a crash loses at most this
            // interval of the --write file.
            source.flush()?;
            if let Some(bar) = &status {
                let s = source.stats();
                bar.set_message(format!(
                    "{} packets captured, {} HTTP 421 so far; dropped: {} by the kernel, {} by the interface",
                    source.packets(),
                    found.load(Ordering::Relaxed),
                    s.dropped,
                    s.interface_dropped
                ));
                bar.tick();
            }
        }
        let done = stop.load(Ordering::SeqCst)
            || config.duration.is_some_and(|d| started.elapsed() >= d)
            || config.count.is_some_and(|n| source.packets() >= n);
        if done {
            break;
        }
        if let Some(pkt) = source.next_packet()? {
            last_ts = last_ts.max(pkt.ts);
            bytes += pkt.data.len() as u64;
            if !links.contains(&pkt.link) {
                links.push(pkt.link);
            }
            pipeline.packet(&pkt, &mut ledger);
        }
    }
    // Key lines written just before the stop still count.
    for f in &mut followers {
        let lines = f.poll();
        if !lines.is_empty() {
            ledger.add_keys(&lines, last_ts, pipeline.sink_states());
        }
    }
    source.flush()?;
    let counters = source.stats();
    if let Some(bar) = status {
        bar.finish_and_clear();
    }
    let packets = source.packets();
    let run = pipeline.finish(&mut ledger);
    let name = format!("live:{}", config.options.interface);
    // The capture's start names it across runs.
    let start = run.first_ts.unwrap_or_default().0.to_be_bytes();
    let input = InputSummary {
        fingerprint: crate::capture::fingerprint(&name, &start),
        name,
        format: "live",
        packets,
        bytes,
        link_types: links,
        warnings: Vec::new(),
    };
    let mut report = ledger.into_report(vec![input], run);
    report.summary.capture = Some(CaptureCounters {
        received: counters.received,
        dropped: counters.dropped,
        interface_dropped: counters.interface_dropped,
    });
    Ok(report)
}

/// Prints each 421 the moment it is known: a text line, or an NDJSON `live_finding` record,
/// on standard output when the report format is line-oriented, else on standard error.
fn streamer(
    format: Format,
    style: Style,
    count: Arc<std::sync::atomic::AtomicU64>,
) -> Box<dyn FnMut(&crate::analysis::diagnose::Finding) + Send> {
    Box::new(move |f| {
        count.fetch_add(1, Ordering::Relaxed);
        let line = match format {
            Format::Ndjson => {
                let mut v = serde_json::to_value(f).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("record".into(), "live_finding".into());
                }
                v.to_string()
            }
            _ => crate::report::live_line(f, style),
        };
        let printed = match format {
            Format::Text | Format::Ndjson => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").and_then(|()| out.flush())
            }
            Format::Json | Format::Html | Format::Parquet => {
                writeln!(std::io::stderr(), "{line}")
            }
        };
        // A closed pipe ends nothing here: the capture and its final report go on.
        let _ = printed;
    })
}
