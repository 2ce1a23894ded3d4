//! Renderers: the [`Report`] written as text for people or JSON for machines.
//!
//! Contract: renderers write to any `io::Write` and never read anything but the report, so
//! they are tested by rendering into a `Vec<u8>`. Output is deterministic for a given report,
//! the same whether its connections are a list or spilled records ([`Connections`]): they
//! go through the connections one at a time (or a group of rows at a time for Parquet), as
//! often as they need, and hold no more of them. Parquet is the exception to the first
//! rule: three files, written into a directory by [`write_parquet`].

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

/// The connections the renderers go through, in id order, as many times as they need: a
/// report's list, or its spilled records read back one at a time (so that writing a report
/// of any size takes the memory of a few connections).
pub trait Connections: serde::Serialize {
    /// Calls `f` with each connection.
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()>;

    /// Calls `f` with the connections in groups of about `rows` rows, a connection and each
    /// of its requests counting one ([`rows`]); a connection of more rows is a group alone.
    fn each_group(
        &self,
        rows: usize,
        f: &mut dyn FnMut(&[&ConnectionRecord]) -> io::Result<()>,
    ) -> io::Result<()>;
}

/// A connection's rows in the tables of connections and requests.
fn rows(c: &ConnectionRecord) -> usize {
    1 + c.requests.len() + c.tunnel.as_ref().map_or(0, |t| t.requests.len())
}

/// Gathers connections into groups of about `limit` rows, calling `f` with each full one.
struct Grouping<T> {
    group: Vec<T>,
    rows: usize,
    limit: usize,
}

impl<T: std::ops::Deref<Target = ConnectionRecord>> Grouping<T> {
    fn new(limit: usize) -> Self {
        Grouping {
            group: Vec::new(),
            rows: 0,
            limit: limit.max(1),
        }
    }

    fn push(
        &mut self,
        c: T,
        f: &mut dyn FnMut(&[&ConnectionRecord]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.rows + rows(&c) > self.limit {
            self.flush(f)?;
        }
        self.rows += rows(&c);
        self.group.push(c);
        Ok(())
    }

    fn flush(
        &mut self,
        f: &mut dyn FnMut(&[&ConnectionRecord]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.group.is_empty() {
            return Ok(());
        }
        let refs: Vec<&ConnectionRecord> = self.group.iter().map(|c| &**c).collect();
        let done = f(&refs);
        self.group.clear();
        self.rows = 0;
        done
    }
}

impl Connections for Records {
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(|c| f(c))
    }

    fn each_group(
        &self,
        rows: usize,
        f: &mut dyn FnMut(&[&ConnectionRecord]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut g = Grouping::new(rows);
        for c in self {
            g.push(&**c, f)?;
        }
        g.flush(f)
    }
}

impl Connections for Spilled {
    fn each(&self, f: &mut dyn FnMut(&ConnectionRecord) -> io::Result<()>) -> io::Result<()> {
        self.for_each(&mut |c| f(&c)).map_err(io_error)
    }

    fn each_group(
        &self,
        rows: usize,
        f: &mut dyn FnMut(&[&ConnectionRecord]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut g = Grouping::new(rows);
        self.for_each(&mut |c| g.push(c, f)).map_err(io_error)?;
        g.flush(f)
    }
}

/// A spill's error as the renderers' (an I/O error stays itself).
fn io_error(e: SpillError) -> io::Error {
    match e {
        SpillError::Io(e) => e,
        e => io::Error::other(e),
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
pub fn write<C: Connections>(
    report: &Report<C>,
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

/// Writes the Parquet tables `connections.parquet`, `requests.parquet` and
/// `findings.parquet` into `dir`, created if missing; files of those names are replaced.
/// Each file is written under a hidden name and renamed when complete, so an engine reading
/// the directory never sees half a table.
#[cfg(feature = "parquet")]
pub fn write_parquet<C: Connections>(report: &Report<C>, dir: &Path) -> io::Result<()> {
    parquet::write(report, dir)
}

/// Without the `parquet` feature: an error saying how to get it.
#[cfg(not(feature = "parquet"))]
pub fn write_parquet<C: Connections>(_report: &Report<C>, _dir: &Path) -> io::Result<()> {
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
