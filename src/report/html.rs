//! HTML: one self-contained page (no network fetches: a strict Content-Security-Policy and
//! everything inline) with the findings and a timeline, one lane per connection.
//!
//! Contract: the report goes into the page as JSON inside a `<script type=
//! "application/json">` element, with `<`, `>`, `&` and the JavaScript line separators
//! escaped so no captured string can end that element; the page's script puts every string
//! into the document as text (`textContent`), never as markup. The template is
//! `timeline.html`, compiled in.

use crate::analysis::Report;
use std::io;

const TEMPLATE: &str = include_str!("timeline.html");
const SLOT: &str = "/*REPORT*/";

/// The page, the report's JSON written into it as it is made.
pub fn write<C: serde::Serialize>(report: &Report<C>, out: &mut dyn io::Write) -> io::Result<()> {
    let (before, after) = TEMPLATE.split_once(SLOT).unwrap_or((TEMPLATE, ""));
    out.write_all(before.as_bytes())?;
    let mut safe = ScriptSafe {
        out,
        held: Vec::new(),
    };
    serde_json::to_writer(&mut safe, report).map_err(io::Error::from)?;
    safe.finish()?;
    out.write_all(after.as_bytes())
}

/// Writes JSON that cannot close or confuse the `<script>` element holding it: `<`, `>`,
/// `&` and the JavaScript line separators U+2028 and U+2029 become JSON escapes, so the
/// parsed value is unchanged. A separator's three bytes may come in two writes: the first
/// of them is held until the rest comes.
struct ScriptSafe<'o> {
    out: &'o mut dyn io::Write,
    held: Vec<u8>,
}

impl ScriptSafe<'_> {
    fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.held)
    }
}

impl ScriptSafe<'_> {
    /// Writes `data` escaped, holding back the start of a separator it ends with.
    fn escape(&mut self, data: &[u8]) -> io::Result<()> {
        let mut plain = 0;
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            let (len, escape) = match b {
                b'<' => (1, Some("\\u003c")),
                b'>' => (1, Some("\\u003e")),
                b'&' => (1, Some("\\u0026")),
                0xE2 => match (data.get(i + 1), data.get(i + 2)) {
                    (Some(0x80), Some(0xA8)) => (3, Some("\\u2028")),
                    (Some(0x80), Some(0xA9)) => (3, Some("\\u2029")),
                    (None, _) | (Some(0x80), None) => {
                        // Maybe a separator cut by the write: held for the next.
                        self.out.write_all(data.get(plain..i).unwrap_or_default())?;
                        self.held
                            .extend_from_slice(data.get(i..).unwrap_or_default());
                        return Ok(());
                    }
                    _ => (1, None),
                },
                _ => (1, None),
            };
            if let Some(escape) = escape {
                self.out.write_all(data.get(plain..i).unwrap_or_default())?;
                self.out.write_all(escape.as_bytes())?;
                plain = i + len;
            }
            i += len;
        }
        self.out.write_all(data.get(plain..).unwrap_or_default())
    }
}

impl io::Write for ScriptSafe<'_> {
    /// The serializer writes token by token: a write is copied only when it completes a
    /// separator held from the one before.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.held.is_empty() {
            self.escape(buf)?;
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(buf);
            self.escape(&joined)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// `json` through the escaping writer, cut into writes of `piece` bytes.
    fn script_safe(json: &str, piece: usize) -> String {
        let mut out = Vec::new();
        let mut safe = ScriptSafe {
            out: &mut out,
            held: Vec::new(),
        };
        for part in json.as_bytes().chunks(piece) {
            safe.write_all(part).unwrap();
        }
        safe.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn captured_markup_cannot_leave_the_data_element() {
        let text = "</script><script>alert(1)</script>& \u{2028}line\u{2029}é\u{2027}";
        let json = serde_json::to_string(&text).unwrap();
        for piece in [1, 2, 3, 5, 1000] {
            let safe = script_safe(&json, piece);
            assert!(
                !safe.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
                "{safe}"
            );
            let back: String = serde_json::from_str(&safe).unwrap();
            assert_eq!(back, text, "in pieces of {piece}");
        }
        assert_eq!(TEMPLATE.matches(SLOT).count(), 1);
    }
}
