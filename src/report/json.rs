//! JSON: the report as one pretty-printed object followed by a newline.

use crate::analysis::Report;
use std::io;

/// `report`, its connections a list or read back from a spill as they are written.
pub fn write<C: serde::Serialize>(report: &Report<C>, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
