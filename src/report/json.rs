//! JSON: the report as one pretty-printed object followed by a newline.

use crate::analysis::Report;
use std::io;

pub fn write(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
