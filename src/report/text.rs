//! Text: a short summary, then one line per connection.

use crate::analysis::{ConnectionRecord, Report};
use crate::flow::{Close, Direction};
use std::io;

pub fn write(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
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
                (b.0 - a.0) as f64 / 1e9
            ),
            _ => String::new(),
        }
    )?;
    writeln!(
        out,
        "TCP connections: {}{}; TCP segments {}, UDP datagrams {}, other IP {}, not IP {}{}",
        s.tcp_connections,
        if s.evicted_connections > 0 {
            format!(" ({} evicted: table full)", s.evicted_connections)
        } else {
            String::new()
        },
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
    if report.connections.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    connection_table(&report.connections, out)
}

fn connection_table(conns: &[ConnectionRecord], out: &mut dyn io::Write) -> io::Result<()> {
    let rows: Vec<[String; 11]> = conns.iter().map(row).collect();
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
        "SNI",
        "TLS",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn io::Write| -> io::Result<()> {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
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
    line(&header, out)?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells, out)?;
    }
    Ok(())
}

fn row(c: &ConnectionRecord) -> [String; 11] {
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
        format!("{:.3}s", (c.last_seen.0 - c.first_seen.0) as f64 / 1e9),
        traffic(Direction::ClientToServer),
        traffic(Direction::ServerToClient),
        if gaps == 0 {
            "0".to_string()
        } else {
            format!("{gaps} ({gap_bytes} B)")
        },
        close_word(c.close).to_string(),
        match &c.tls {
            Some(t) => t.sni.clone().unwrap_or_else(|| "(none)".to_string()),
            None => "-".to_string(),
        },
        c.tls.as_deref().map_or_else(|| "-".to_string(), tls_cell),
    ]
}

/// "1.3 h2 decrypted", "1.2 http/1.1 no keys", "1.3 ECH failed".
fn tls_cell(t: &crate::proto::tls::session::TlsInfo) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &t.version {
        parts.push(v.trim_start_matches("TLS ").to_string());
    }
    if let Some(a) = &t.alpn {
        parts.push(a.clone());
    }
    if t.ech {
        parts.push("ECH".to_string());
    }
    parts.push(match t.decryption.as_str() {
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
