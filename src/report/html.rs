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

pub fn write(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    let json = serde_json::to_string(report).map_err(io::Error::from)?;
    let (before, after) = TEMPLATE.split_once(SLOT).unwrap_or((TEMPLATE, ""));
    out.write_all(before.as_bytes())?;
    out.write_all(script_safe(&json).as_bytes())?;
    out.write_all(after.as_bytes())
}

/// JSON that cannot close or confuse the `<script>` element holding it: the escapes are
/// JSON escapes, so the parsed value is unchanged.
fn script_safe(json: &str) -> String {
    let mut s = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => s.push_str("\\u003c"),
            '>' => s.push_str("\\u003e"),
            '&' => s.push_str("\\u0026"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_markup_cannot_leave_the_data_element() {
        let json = serde_json::to_string(&"</script><script>alert(1)</script>&").unwrap();
        let safe = script_safe(&json);
        assert!(!safe.contains('<') && !safe.contains('>'));
        let back: String = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, "</script><script>alert(1)</script>&");
        assert_eq!(TEMPLATE.matches(SLOT).count(), 1);
    }
}
