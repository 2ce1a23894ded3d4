//! Renderers: the [`Report`] written as text for people or JSON for machines.
//!
//! Contract: renderers write to any `io::Write` and never read anything but the report, so
//! they are tested by rendering into a `Vec<u8>`. Output is deterministic for a given report.

mod json;
mod text;

use crate::analysis::Report;
use std::io;

/// Output formats of `misdirect analyze --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary and a connection table for a person.
    Text,
    /// The whole report as one JSON object (schema in docs/report-schema.md).
    Json,
}

/// Writes `report` in `format`.
pub fn write(report: &Report, format: Format, out: &mut dyn io::Write) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, out),
        Format::Json => json::write(report, out),
    }
}
