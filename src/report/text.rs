//! Text: a short summary, one line per connection, then each connection's requests (or
//! FTP/SMTP replies) in order.
//!
//! Every string taken from the capture goes through [`clean`]: a Host header or SNI may
//! carry terminal escape sequences, which must print as text, not act on the terminal.

use super::{provenance, Connections};
use crate::analysis::{ConnectionRecord, Report};
use crate::flow::{Close, Direction};
use crate::proto::http::Exchange;
use crate::proto::AppProtocol;
use std::io;

/// ANSI styling, or none (piped output, `--color never`, `NO_COLOR`).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
}

/// What the summary counts of the connections and the table's widths, from a first pass
/// over them: the text is written in three (counts, table, conversations), so that the
/// connections can be read back one at a time from a spill.
#[derive(Default)]
struct Tally {
    connections: u64,
    requests: u64,
    unanswered: u64,
    connections_with_requests: u64,
    replies: u64,
    /// FTP, SMTP and undetermined 421 replies.
    replies_421: [u64; 3],
    /// Widths of the table's columns, the TUNNEL column's last.
    widths: [usize; 13],
    tunnels: bool,
}

impl Tally {
    fn add(&mut self, c: &ConnectionRecord) {
        self.connections += 1;
        for (_, _, e) in provenance::requests(c) {
            self.requests += 1;
            self.unanswered += u64::from(e.status.is_none());
        }
        self.connections_with_requests += u64::from(!c.requests.is_empty());
        if let Some(ctl) = &c.control {
            self.replies += ctl.replies.len() as u64;
            let kind = match c.protocol {
                AppProtocol::Ftp => Some(0),
                AppProtocol::Smtp => Some(1),
                AppProtocol::FtpOrSmtp => Some(2),
                _ => None,
            };
            if let Some(n) = kind.and_then(|k| self.replies_421.get_mut(k)) {
                *n += ctl.replies.iter().filter(|r| r.code == 421).count() as u64;
            }
        }
        self.tunnels |= !c.encapsulation.is_empty();
        for (w, cell) in self.widths.iter_mut().zip(cells(c)) {
            *w = (*w).max(cell.chars().count());
        }
    }
}

pub fn write<C: Connections>(
    report: &Report<C>,
    style: Style,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let mut tally = Tally::default();
    report.connections.each(&mut |c| {
        tally.add(c);
        Ok(())
    })?;
    let s = &report.summary;
    let p = &s.packets;
    writeln!(
        out,
        "{} {}: {} input{}, {} packets, {} bytes captured{}",
        report.tool.name,
        report.tool.version,
        report.inputs.len(),
        plural(report.inputs.len() as u64),
        p.packets,
        p.captured_bytes,
        match (s.first_seen, s.last_seen) {
            (Some(a), Some(b)) => format!(
                ", {} to {} ({:.3} s)",
                a.rfc3339(),
                b.rfc3339(),
                b.since(a) as f64 / 1e9
            ),
            _ => String::new(),
        }
    )?;
    writeln!(
        out,
        "TCP connections: {}{}; TCP segments {}, UDP datagrams {}, other IP {}, not IP {}{}",
        s.tcp_connections,
        [
            (s.evicted_connections, "evicted: table full"),
            (s.unlisted_connections, "without payload, not listed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!(" ({n} {what})"))
        .collect::<String>(),
        p.tcp,
        p.udp,
        p.other_ip,
        p.not_ip,
        if p.ip_fragments > 0 {
            format!(
                ", IP fragments {} ({} datagrams reassembled)",
                p.ip_fragments, p.ip_datagrams_reassembled
            )
        } else {
            String::new()
        }
    )?;
    if p.encapsulated > 0 {
        writeln!(
            out,
            "Tunnelled packets: {} (decoded inside VXLAN, GENEVE, GRE, ERSPAN, IP-in-IP, MPLS or PPPoE)",
            p.encapsulated
        )?;
    }
    let t = &s.tls;
    if t.connections > 0 || t.keylog.entries > 0 {
        writeln!(
            out,
            "TLS connections: {} ({} with keys, {} decrypted); key log: {} secrets{}",
            t.connections,
            t.with_keys,
            t.decrypted,
            t.keylog.entries,
            if t.keylog.malformed > 0 {
                format!(", {} malformed lines skipped", t.keylog.malformed)
            } else {
                String::new()
            }
        )?;
    }
    if tally.requests > 0 {
        let conns = tally.connections_with_requests;
        writeln!(
            out,
            "HTTP requests: {} on {} connection{}; {} unanswered",
            tally.requests,
            conns,
            plural(conns),
            tally.unanswered,
        )?;
    }
    if tally.replies > 0 {
        let [ftp, smtp, either] = tally.replies_421;
        writeln!(
            out,
            "FTP/SMTP replies: {} (FTP 421: {ftp}, SMTP 421: {smtp}, undetermined 421: \
             {either}); not HTTP",
            tally.replies,
        )?;
    }
    findings_summary(report, style, out)?;
    if !report.anomalies.is_empty() {
        let list: Vec<String> = report
            .anomalies
            .by_name()
            .into_iter()
            .map(|(name, n)| format!("{name} ×{n}"))
            .collect();
        writeln!(out, "Anomalies: {}", list.join(", "))?;
    }
    for input in &report.inputs {
        for w in &input.warnings {
            writeln!(out, "Warning: {}: {w}", input.name)?;
        }
    }
    findings_paragraphs(report, style, out)?;
    if tally.connections == 0 {
        return Ok(());
    }
    writeln!(out)?;
    connection_table(&report.connections, &tally, out)?;
    report.connections.each(&mut |c| conversation(c, out))
}

/// "421s: 2 (sni_mismatch ×2, connection_reuse ×1); retried: 1 (→ 200 ×1); not retried: 1".
fn findings_summary<C>(
    report: &Report<C>,
    style: Style,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    use crate::analysis::diagnose::Kind;
    use std::collections::BTreeMap;
    let http: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Http421)
        .collect();
    if !http.is_empty() {
        let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for f in &http {
            for c in &f.causes {
                *causes.entry(c.name()).or_default() += 1;
            }
            if let Some(r) = &f.retry {
                let o = r.status.map_or("no response".into(), |s| s.to_string());
                *outcomes.entry(o).or_default() += 1;
            }
        }
        let causes: Vec<String> = causes.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
        let retried: usize = outcomes.values().sum();
        let outcomes: Vec<String> = outcomes
            .iter()
            .map(|(o, n)| format!("→ {o} ×{n}"))
            .collect();
        writeln!(
            out,
            "{}: {} ({}); retried on another connection: {}{}; not retried: {}",
            style.red("HTTP 421 Misdirected Request"),
            http.len(),
            causes.join(", "),
            retried,
            if outcomes.is_empty() {
                String::new()
            } else {
                format!(" ({})", outcomes.join(", "))
            },
            http.len() - retried
        )?;
    }
    let count = |k| report.findings.iter().filter(|f| f.kind == k).count();
    let mismatched = count(Kind::SniAuthorityMismatch);
    if mismatched > 0 {
        writeln!(
            out,
            "{}: {mismatched} (answered although the authority differs from the SNI)",
            style.yellow("Requests under another name than their SNI")
        )?;
    }
    let (ftp, smtp, either) = (
        count(Kind::Ftp421),
        count(Kind::Smtp421),
        count(Kind::FtpOrSmtp421),
    );
    if ftp + smtp + either > 0 {
        writeln!(
            out,
            "FTP 421: {ftp}, SMTP 421: {smtp}{} (service not available: not HTTP's 421)",
            if either > 0 {
                format!(", FTP-or-SMTP 421: {either}")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// One line for a 421 seen during a live capture:
/// "21:02:08.892 HTTP 421 on connection 1 [sni_mismatch, connection_reuse]: GET b.example.test /b.js (SNI a.example.test)".
pub fn live_line(f: &crate::analysis::diagnose::Finding, style: Style) -> String {
    let causes: Vec<&str> = f.causes.iter().map(|c| c.name()).collect();
    let opt = |v: &Option<String>| v.as_deref().map_or("?".to_string(), clean);
    format!(
        "{} {} on connection {}{} [{}]: {} {} {}{}",
        f.time.map_or("?".into(), clock),
        style.red("HTTP 421"),
        f.connection.0,
        f.stream_id
            .map_or(String::new(), |s| format!(" stream {s}")),
        style.bold(&causes.join(", ")),
        opt(&f.method),
        opt(&f.authority),
        opt(&f.path),
        f.sni
            .as_deref()
            .map_or(String::new(), |s| format!(" (SNI {})", clean(s)))
    )
}

/// One paragraph per finding, in plain words.
fn findings_paragraphs<C>(
    report: &Report<C>,
    style: Style,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    for f in &report.findings {
        writeln!(out)?;
        let title = match f.status {
            Some(421) => style.red(&format!(
                "{} on connection {}",
                f.kind.name(),
                f.connection.0
            )),
            _ => style.yellow(&format!(
                "{} on connection {}",
                f.kind.name(),
                f.connection.0
            )),
        };
        let causes: Vec<&str> = f.causes.iter().map(|c| c.name()).collect();
        if causes.is_empty() {
            writeln!(out, "{title}")?;
        } else {
            writeln!(out, "{title} [{}]", style.bold(&causes.join(", ")))?;
        }
        for line in wrap(&clean(&f.explanation), 96) {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A connection's requests, or its FTP/SMTP replies, one per line.
fn conversation(c: &ConnectionRecord, out: &mut dyn io::Write) -> io::Result<()> {
    let requests: Vec<&Exchange> = provenance::requests(c).map(|(_, _, e)| e).collect();
    if requests.is_empty() && c.control.is_none() {
        return Ok(());
    }
    writeln!(out)?;
    let sni = c
        .tls
        .as_ref()
        .map(|t| format!(", SNI {}", t.sni.as_deref().map_or("(none)".into(), clean)))
        .unwrap_or_default();
    writeln!(
        out,
        "Connection {} ({} → {}, {}{sni}):",
        c.id.0,
        c.client,
        c.server,
        protocol_word(c.protocol)
    )?;
    for e in requests {
        let opt = |v: &Option<crate::intern::ArcStr>| v.as_deref().map_or("?".to_string(), clean);
        let time = e.request_time.or(e.response_time).map_or("?".into(), clock);
        let stream = e.stream_id.map_or(String::new(), |s| format!("[{s}] "));
        let mut status = e
            .rare()
            .interim
            .iter()
            .map(|s| format!("{s} "))
            .collect::<String>();
        status.push_str(&e.status.map_or("(no response)".into(), |s| s.to_string()));
        let took = match (e.request_time, e.response_time, e.status) {
            (Some(a), Some(b), Some(_)) => format!(" in {:.1} ms", b.since(a) as f64 / 1e6),
            _ => String::new(),
        };
        let mut notes = Vec::new();
        if !e.request_seen {
            notes.push("request not captured".to_string());
        } else if e.unknown_fields > 0 {
            notes.push(format!("{} header fields unknown", e.unknown_fields));
        }
        if e.first_party == Some(false) {
            notes.push("reused: not the host the connection was opened for".to_string());
        }
        if let Some(to) = &e.rare().upgraded_to {
            notes.push(format!("switched to {}", clean(to)));
        }
        if let Some(r) = &e.rare().reset {
            notes.push(format!("reset ({})", r.error));
        }
        if e.pushed {
            notes.push("server push".into());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join("; "))
        };
        writeln!(
            out,
            "  {time}  {stream}{} {} {} → {status}{took}{notes}",
            opt(&e.method),
            opt(&e.authority),
            opt(&e.path)
        )?;
    }
    if let Some(ctl) = &c.control {
        for (i, r) in ctl.replies.iter().enumerate() {
            let cmd = match &r.command {
                Some(c) => clean(c),
                None if i == 0 => "(greeting)".into(),
                None => "(unsolicited)".into(),
            };
            writeln!(
                out,
                "  {}  {cmd} → {} {}",
                clock(r.time),
                r.code,
                clean(&r.text)
            )?;
        }
    }
    Ok(())
}

fn protocol_word(p: AppProtocol) -> &'static str {
    match p {
        AppProtocol::Http1 => "HTTP/1.x",
        AppProtocol::Http2 => "HTTP/2",
        AppProtocol::Ftp => "FTP",
        AppProtocol::Smtp => "SMTP",
        AppProtocol::FtpOrSmtp => "FTP or SMTP",
        AppProtocol::Unknown => "unknown",
        AppProtocol::None => "no data",
    }
}

/// Time of day, to the millisecond: "20:03:01.123".
fn clock(t: crate::Timestamp) -> String {
    let s = t.rfc3339();
    s.get(11..23).unwrap_or(&s).to_string()
}

/// Captured text made safe for a terminal: control characters are escaped.
pub fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A connection's cells in the table, the TUNNEL column's last. Several hold captured bytes
/// (SNI, ALPN, tunnel names): all are cleaned here, so none can reach the terminal raw.
fn cells(c: &ConnectionRecord) -> [String; 13] {
    let [a, b, c2, d, e, f, g, h, i, j, k, l] = row(c);
    [a, b, c2, d, e, f, g, h, i, j, k, l, tunnel_cell(c)].map(|cell| clean(&cell))
}

fn connection_table<C: Connections>(
    conns: &C,
    tally: &Tally,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    // A TUNNEL column only when some connection was found inside one.
    let columns = if tally.tunnels { 13 } else { 12 };
    let header = [
        "ID",
        "CLIENT",
        "SERVER",
        "START (UTC)",
        "DURATION",
        "CLIENT→SERVER",
        "SERVER→CLIENT",
        "GAPS",
        "CLOSE",
        "PROTOCOL",
        "SNI",
        "TLS",
        "TUNNEL",
    ];
    let mut widths = tally.widths;
    for (w, h) in widths.iter_mut().zip(header) {
        *w = (*w).max(h.chars().count());
    }
    let line = |cells: &[&str], out: &mut dyn io::Write| -> io::Result<()> {
        let mut s = String::new();
        for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            // Numbers right-aligned, words left-aligned.
            if matches!(i, 0 | 4 | 5 | 6 | 7) {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(header.get(..columns).unwrap_or(&header), out)?;
    conns.each(&mut |c| {
        let cells = cells(c);
        let cells: Vec<&str> = cells.iter().take(columns).map(String::as_str).collect();
        line(&cells, out)
    })
}

fn row(c: &ConnectionRecord) -> [String; 12] {
    let start = c.first_seen.rfc3339();
    // "2026-11-23T20:03:01.123456789Z" → "2026-11-23 20:03:01.123456"
    let start = start.get(..26).unwrap_or(&start).replacen('T', " ", 1);
    let traffic = |d: Direction| {
        let st = c.stats(d);
        format!("{} pkts {} B", st.packets, st.stream_bytes)
    };
    let gaps = c.client_to_server.gaps + c.server_to_client.gaps;
    let gap_bytes = c.client_to_server.gap_bytes + c.server_to_client.gap_bytes;
    [
        c.id.0.to_string(),
        c.client.to_string(),
        c.server.to_string(),
        start,
        format!("{:.3}s", c.last_seen.since(c.first_seen) as f64 / 1e9),
        traffic(Direction::ClientToServer),
        traffic(Direction::ServerToClient),
        if gaps == 0 {
            "0".to_string()
        } else {
            format!("{gaps} ({gap_bytes} B)")
        },
        close_word(c.close).to_string(),
        protocol_word(c.protocol).to_string(),
        match &c.tls {
            Some(t) => t.sni.as_deref().unwrap_or("(none)").to_string(),
            None => "-".to_string(),
        },
        c.tls.as_deref().map_or_else(|| "-".to_string(), tls_cell),
    ]
}

/// The tunnels, outermost first: "vxlan 42 192.0.2.1→192.0.2.2 / mpls 16"; "-" for none.
fn tunnel_cell(c: &ConnectionRecord) -> String {
    if c.encapsulation.is_empty() {
        return "-".to_string();
    }
    c.encapsulation
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// "1.3 h2 decrypted", "1.2 http/1.1 no keys", "1.3 ECH failed".
fn tls_cell(t: &crate::proto::tls::session::TlsInfo) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &t.version {
        parts.push(v.to_string().trim_start_matches("TLS ").to_string());
    }
    if let Some(a) = &t.alpn {
        parts.push(a.to_string());
    }
    if t.ech {
        parts.push("ECH".to_string());
    }
    parts.push(match &*t.decryption {
        "no_keys" => "no keys".to_string(),
        "not_applicable" => "no handshake".to_string(),
        d if d.starts_with("failed") => "failed".to_string(),
        d => d.to_string(),
    });
    parts.join(" ")
}

fn close_word(c: Close) -> &'static str {
    match c {
        Close::Fin => "fin",
        Close::HalfClosed => "half-closed",
        Close::ResetByClient => "reset by client",
        Close::ResetByServer => "reset by server",
        Close::Open => "open",
        Close::Evicted => "evicted",
        Close::Replaced => "replaced",
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::session::TlsInfo;
    use crate::proto::AppProtocol;

    #[test]
    fn every_captured_cell_of_the_connection_table_is_cleaned() {
        let mut tls = TlsInfo::default();
        tls.sni = Some("evil\x1b[2J.test".into());
        tls.alpn = Some("h2\x1b]0;owned\x07".into());
        let record = ConnectionRecord {
            first_packet: 1,
            last_packet: 1,
            protocol: AppProtocol::Unknown,
            tls: Some(Box::new(tls)),
            ..ConnectionRecord::bare(
                crate::flow::ConnId(1),
                "10.0.0.1:40000".parse().unwrap(),
                "10.0.0.2:443".parse().unwrap(),
            )
        };
        let records: crate::analysis::Records = vec![Box::new(record)];
        let mut tally = Tally::default();
        records.iter().for_each(|c| tally.add(c));
        let mut out = Vec::new();
        connection_table(&records, &tally, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2J.test"), "{text}");
        assert!(text.contains("h2\\u{1b}]0;owned\\u{7}"), "{text}");
    }
}
