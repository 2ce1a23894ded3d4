//! Renderers: the [`Report`] written as text for people or JSON for machines.
//!
//! Contract: renderers write to any `io::Write` and never read anything but the report, so
//! they are tested by rendering into a `Vec<u8>`. Output is deterministic for a given report.
//! Parquet is the exception: three files, written into a directory by [`write_parquet`].

mod html;
mod json;
mod ndjson;
#[cfg(feature = "parquet")]
mod parquet;
mod provenance;
mod text;

pub use text::{clean, live_line, Style};

use crate::analysis::{ConnectionRecord, Records, Report, SpillError, Spilled};
use std::io;
use std::path::Path;

/// The connections a streaming renderer goes through (JSON, NDJSON): a report's list, or
/// its spilled records read back one at a time.
pub trait Connections: serde::Serialize {
    /// Calls `f` with each connection in id order.
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()>;
}

impl Connections for Records {
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(|c| f(c))
    }
}

impl Connections for Spilled {
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()> {
        Spilled::each(self, f).map_err(|e| match e {
            SpillError::Io(e) => e,
            e => io::Error::other(e),
        })
    }
}

/// Output formats of `misdirect analyze --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary, one paragraph per finding, the connections and their requests.
    Text,
    /// The whole report as one JSON object (schema in docs/report-schema.md).
    Json,
    /// One JSON object per line: the summary, then each connection, request and finding.
    Ndjson,
    /// One self-contained HTML file with a timeline of connections and requests.
    Html,
    /// Three Parquet tables (connections, requests, findings) in the directory `-o` names;
    /// needs a misdirect built with `--features parquet`.
    Parquet,
}

/// Whether this build writes `--format parquet`.
pub const PARQUET_AVAILABLE: bool = cfg!(feature = "parquet");

const NO_PARQUET: &str = "this misdirect was built without Parquet output; build it with \
                          `cargo build --release --features parquet`";

/// Checks that `format` can be written to `output` (`None`: standard output) by this build,
/// before any work is done; the error is one line for the user.
pub fn check_destination(format: Format, output: Option<&Path>) -> Result<(), String> {
    match (format, output) {
        (Format::Parquet, _) if !PARQUET_AVAILABLE => Err(NO_PARQUET.into()),
        (Format::Parquet, None) => {
            Err("--format parquet writes three files (connections.parquet, \
             requests.parquet, findings.parquet) into a directory: name it with -o DIR"
                .into())
        }
        (Format::Parquet, Some(dir)) if dir.is_file() => Err(format!(
            "{} is a file: --format parquet writes a directory of three files",
            dir.display()
        )),
        _ => Ok(()),
    }
}

/// Writes `report` in `format`; `style` applies to text only. Parquet cannot be written to a
/// stream: it is an error here (see [`write_parquet`]).
pub fn write(
    report: &Report,
    format: Format,
    style: Style,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, style, out),
        Format::Json => json::write(report, out),
        Format::Ndjson => ndjson::write(report, out),
        Format::Html => html::write(report, out),
        Format::Parquet => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Parquet output is a directory of files, not a stream",
        )),
    }
}

/// Writes `report`, its records read back from their spill as they are written: JSON and
/// NDJSON only (text, HTML and Parquet are made from a [`Report`] of records).
pub fn write_spilled(
    report: &Report<Spilled>,
    format: Format,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Json => json::write(report, out),
        Format::Ndjson => ndjson::write(report, out),
        Format::Text | Format::Html | Format::Parquet => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "only JSON and NDJSON are written from spilled records",
        )),
    }
}

/// Whether `format` is written from spilled records ([`write_spilled`]).
pub fn streams(format: Format) -> bool {
    matches!(format, Format::Json | Format::Ndjson)
}

/// Writes the Parquet tables `connections.parquet`, `requests.parquet` and
/// `findings.parquet` into `dir`, created if missing; files of those names are replaced.
/// Each file is written under a hidden name and renamed when complete, so an engine reading
/// the directory never sees half a table.
#[cfg(feature = "parquet")]
pub fn write_parquet(report: &Report, dir: &Path) -> io::Result<()> {
    parquet::write(report, dir)
}

/// Without the `parquet` feature: an error saying how to get it.
#[cfg(not(feature = "parquet"))]
pub fn write_parquet(_report: &Report, _dir: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, NO_PARQUET))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_needs_the_feature_and_a_directory() {
        let dir = Path::new("out");
        assert_eq!(check_destination(Format::Json, None), Ok(()));
        if PARQUET_AVAILABLE {
            assert_eq!(check_destination(Format::Parquet, Some(dir)), Ok(()));
            let err = check_destination(Format::Parquet, None).unwrap_err();
            assert!(err.contains("-o DIR"), "{err}");
        } else {
            for output in [None, Some(dir)] {
                let err = check_destination(Format::Parquet, output).unwrap_err();
                assert!(err.contains("--features parquet"), "{err}");
            }
        }
        // Never to a stream.
        let report = crate::analysis::Ledger::new(
            &crate::proto::tls::keylog::KeyLog::default(),
            &Default::default(),
        )
        .into_report(Vec::new(), Default::default());
        let written = write(
            &report,
            Format::Parquet,
            Style { color: false },
            &mut Vec::new(),
        );
        assert!(written.is_err());
        #[cfg(not(feature = "parquet"))]
        {
            let err = write_parquet(&report, dir).unwrap_err().to_string();
            assert!(err.contains("--features parquet"), "{err}");
        }
    }
}
