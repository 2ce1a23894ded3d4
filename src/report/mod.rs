//! Renderers: the [`Report`] written as text for people or JSON for machines.
//!
//! Contract: renderers write to any `io::Write` and never read anything but the report, so
//! they are tested by rendering into a `Vec<u8>`. Output is deterministic for a given report.

mod html;
mod json;
mod ndjson;
mod text;

pub use text::{clean, live_line, Style};

use crate::analysis::Report;
use std::io;

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
}

/// Writes `report` in `format`; `style` applies to text only.
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
    }
}
