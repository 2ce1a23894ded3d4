//! FTP and SMTP control connections: client commands and the server's 3-digit replies.
//!
//! Contract: [`Control::data`] takes each direction's bytes in order and keeps the server's
//! replies ([`Reply`]: code, first line, the command answered), multi-line replies
//! (`NNN-` … `NNN `, RFC 959 §4.2 and RFC 5321 §4.2.1) joined into one. SMTP message content
//! (after `DATA` and its 354, or a `BDAT` chunk) is skipped, so text in a mail is never
//! taken for a command. The dialect, FTP or SMTP, is told by content: the commands the
//! client sends, enhanced status codes (`4.7.0`), and the words of the greeting; when none
//! says, it stays open and the analysis may settle it from other connections to the same
//! server. After STARTTLS or AUTH TLS is accepted the rest is TLS ([`Control::tls_starts`]).
//!
//! Recovery: lines are self-delimiting; after a gap the partial line is dropped and parsing
//! resumes at the next line.

use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::flow::Direction;
use crate::Timestamp;
use serde::Serialize;
use std::collections::VecDeque;

/// Longest line kept (RFC 5321 §4.5.3.1.5 says 512 for replies; servers exceed it).
const MAX_LINE: usize = 4096;
/// Bytes of a reply's text kept.
const MAX_TEXT: usize = 512;

const SMTP_VERBS: &[&str] = &[
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "VRFY", "EXPN", "STARTTLS", "ETRN",
];
const FTP_VERBS: &[&str] = &[
    "USER", "PASS", "ACCT", "CWD", "CDUP", "PWD", "XPWD", "LIST", "NLST", "RETR", "STOR", "STOU",
    "APPE", "PASV", "EPSV", "PORT", "EPRT", "TYPE", "SYST", "FEAT", "MODE", "STRU", "MKD", "RMD",
    "DELE", "SIZE", "MDTM", "OPTS", "REST", "ABOR", "SITE", "STAT", "RNFR", "RNTO", "PBSZ", "PROT",
    "CCC", "MLSD", "MLST", "LANG", "ALLO", "SMNT", "REIN",
];
/// Verbs both use.
const SHARED_VERBS: &[&str] = &["AUTH", "NOOP", "QUIT", "HELP"];

/// FTP or SMTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Ftp,
    Smtp,
}

/// One reply of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub time: Timestamp,
    pub code: u16,
    /// The first line's text after the code, cut to 512 bytes.
    pub text: String,
    /// Lines of a multi-line reply.
    pub lines: u32,
    /// The verb of the command this answers; null for a greeting or an unsolicited reply.
    pub command: Option<String>,
}

/// What a control connection showed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ControlInfo {
    /// Null when nothing in the connection told FTP from SMTP.
    pub dialect: Option<Dialect>,
    /// What told the dialect: `commands`, `enhanced_status`, `greeting`, or `same_server`.
    pub dialect_from: Option<&'static str>,
    pub commands: u64,
    /// Replies in order, at most the exchange limit; `replies_dropped` counts the rest.
    pub replies: Vec<Reply>,
    pub replies_dropped: u64,
    /// STARTTLS / AUTH TLS was accepted: what follows is TLS.
    pub starttls: bool,
}

#[derive(Default)]
struct Multi {
    code: u16,
    text: String,
    lines: u32,
    time: Option<Timestamp>,
}

/// One FTP or SMTP control connection.
pub struct Control {
    client_line: Vec<u8>,
    server_line: Vec<u8>,
    /// Discarding the rest of an over-long line.
    client_skip: bool,
    server_skip: bool,
    multi: Option<Multi>,
    /// Commands sent and not answered yet, oldest first.
    commands: VecDeque<String>,
    /// SMTP: the client is sending message content (until `.`), or BDAT bytes to skip.
    in_data: bool,
    bdat_left: u64,
    data_requested: bool,
    smtp_votes: u32,
    ftp_votes: u32,
    enhanced: bool,
    greeting_dialect: Option<Dialect>,
    tls_requested: bool,
    tls: bool,
    max_replies: usize,
    pub info: ControlInfo,
    pub anomalies: AnomalyCounts,
}

impl Control {
    pub fn new(max_replies: usize) -> Self {
        Control {
            client_line: Vec::new(),
            server_line: Vec::new(),
            client_skip: false,
            server_skip: false,
            multi: None,
            commands: VecDeque::new(),
            in_data: false,
            bdat_left: 0,
            data_requested: false,
            smtp_votes: 0,
            ftp_votes: 0,
            enhanced: false,
            greeting_dialect: None,
            tls_requested: false,
            tls: false,
            max_replies,
            info: ControlInfo::default(),
            anomalies: AnomalyCounts::default(),
        }
    }

    /// Whether TLS has started (after an accepted STARTTLS / AUTH TLS): the caller hands the
    /// bytes after [`Control::data`] returned `Some(n)` to TLS.
    pub fn tls_starts(&self) -> bool {
        self.tls
    }

    /// Takes bytes of one direction; `Some(n)` when TLS starts after the first `n` bytes.
    pub fn data(&mut self, dir: Direction, mut data: &[u8], at: Timestamp) -> Option<usize> {
        let total = data.len();
        while !data.is_empty() {
            if self.tls {
                return Some(total - data.len());
            }
            if dir == Direction::ClientToServer && self.bdat_left > 0 {
                let n = (self.bdat_left.min(data.len() as u64)) as usize;
                self.bdat_left -= n as u64;
                data = data.get(n..).unwrap_or(&[]);
                continue;
            }
            let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                self.partial(dir, data);
                return None;
            };
            let (piece, rest) = data.split_at(nl + 1);
            data = rest;
            self.partial(dir, piece);
            let (line, skipped) = match dir {
                Direction::ClientToServer => (
                    std::mem::take(&mut self.client_line),
                    std::mem::take(&mut self.client_skip),
                ),
                Direction::ServerToClient => (
                    std::mem::take(&mut self.server_line),
                    std::mem::take(&mut self.server_skip),
                ),
            };
            if skipped {
                continue;
            }
            let line = trim_eol(&line);
            match dir {
                Direction::ClientToServer => self.command(line),
                Direction::ServerToClient => self.reply_line(line, at),
            }
        }
        self.tls.then_some(total)
    }

    /// Bytes of a direction were lost: the partial line goes, and so does the pairing of
    /// replies to commands.
    pub fn gap(&mut self, dir: Direction) {
        match dir {
            Direction::ClientToServer => {
                self.client_line.clear();
                self.client_skip = true;
                self.in_data = false;
                self.bdat_left = 0;
            }
            Direction::ServerToClient => {
                self.server_line.clear();
                self.server_skip = true;
                self.multi = None;
            }
        }
        self.commands.clear();
    }

    fn partial(&mut self, dir: Direction, piece: &[u8]) {
        let (buf, skip) = match dir {
            Direction::ClientToServer => (&mut self.client_line, &mut self.client_skip),
            Direction::ServerToClient => (&mut self.server_line, &mut self.server_skip),
        };
        if *skip {
            return;
        }
        if buf.len() + piece.len() > MAX_LINE {
            // Message content in SMTP DATA may have long lines; elsewhere it is an anomaly.
            if !(dir == Direction::ClientToServer && self.in_data) {
                self.anomalies.add(Anomaly::ControlLineLimit);
            }
            buf.clear();
            *skip = true;
            return;
        }
        buf.extend_from_slice(piece);
    }

    fn command(&mut self, line: &[u8]) {
        if self.in_data {
            if line == b"." {
                // The reply that follows accepts or refuses the message: DATA's second reply.
                self.in_data = false;
                self.commands.push_back("DATA".into());
            }
            return;
        }
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb =
            String::from_utf8_lossy(line.get(..verb_end).unwrap_or(&[])).to_ascii_uppercase();
        let args = line.get(verb_end + 1..).unwrap_or(&[]);
        if verb.is_empty() || verb.len() > 12 || !verb.bytes().all(|b| b.is_ascii_alphabetic()) {
            return;
        }
        self.info.commands += 1;
        if SMTP_VERBS.contains(&verb.as_str()) {
            self.smtp_votes += 1;
        } else if FTP_VERBS.contains(&verb.as_str()) {
            self.ftp_votes += 1;
        } else if verb == "AUTH" {
            // FTP: AUTH TLS / AUTH SSL (RFC 4217); SMTP: AUTH <SASL mechanism>.
            let mech = String::from_utf8_lossy(args).trim().to_ascii_uppercase();
            if mech == "TLS" || mech == "SSL" || mech == "TLS-C" {
                self.ftp_votes += 1;
                self.tls_requested = true;
            } else {
                self.smtp_votes += 1;
            }
        } else if !SHARED_VERBS.contains(&verb.as_str()) {
            return;
        }
        if verb == "STARTTLS" {
            self.tls_requested = true;
        }
        if verb == "DATA" {
            self.data_requested = true;
        }
        if verb == "BDAT" {
            let n = String::from_utf8_lossy(args);
            self.bdat_left = n
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
        if self.commands.len() < 1024 {
            self.commands.push_back(verb);
        }
    }

    fn reply_line(&mut self, line: &[u8], at: Timestamp) {
        let code = line
            .get(..3)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok());
        let sep = line.get(3).copied();
        let text = line.get(4..).unwrap_or(&[]);
        match (&mut self.multi, code, sep) {
            // The last line of a multi-line reply: same code and a space (or nothing).
            (Some(m), Some(c), Some(b' ') | None) if c == m.code => {
                m.lines += 1;
                let m = self.multi.take().unwrap_or_default();
                self.reply(m.code, m.text, m.lines, m.time.unwrap_or(at));
            }
            (Some(m), _, _) => m.lines += 1,
            (None, Some(c), Some(b'-')) => {
                self.multi = Some(Multi {
                    code: c,
                    text: cut(text),
                    lines: 1,
                    time: Some(at),
                });
            }
            (None, Some(c), Some(b' ') | None) => self.reply(c, cut(text), 1, at),
            (None, _, _) => self.anomalies.add(Anomaly::ControlReplyInvalid),
        }
    }

    fn reply(&mut self, code: u16, text: String, lines: u32, at: Timestamp) {
        let greeting = self.info.replies.is_empty() && self.commands.is_empty();
        // Preliminary replies (1xx) leave the command waiting for its completion reply.
        let command = if (100..200).contains(&code) {
            self.commands.front().cloned()
        } else {
            self.commands.pop_front()
        };
        if is_enhanced(&text) {
            self.enhanced = true;
        }
        if greeting && code == 220 {
            let upper = text.to_ascii_uppercase();
            if upper.contains("SMTP") {
                self.greeting_dialect = Some(Dialect::Smtp);
            } else if upper.contains("FTP") {
                self.greeting_dialect = Some(Dialect::Ftp);
            }
        }
        match (command.as_deref(), code) {
            (Some("DATA"), 354) => self.in_data = true,
            (Some("STARTTLS"), 220) | (Some("AUTH"), 234) if self.tls_requested => {
                self.tls = true;
                self.info.starttls = true;
            }
            _ => {}
        }
        if self.info.replies.len() < self.max_replies {
            self.info.replies.push(Reply {
                time: at,
                code,
                text,
                lines,
                command,
            });
        } else {
            self.info.replies_dropped += 1;
        }
    }

    pub fn finish(mut self) -> (ControlInfo, AnomalyCounts) {
        let (dialect, from) = if self.smtp_votes > self.ftp_votes {
            (Some(Dialect::Smtp), Some("commands"))
        } else if self.ftp_votes > self.smtp_votes {
            (Some(Dialect::Ftp), Some("commands"))
        } else if self.enhanced {
            (Some(Dialect::Smtp), Some("enhanced_status"))
        } else if let Some(d) = self.greeting_dialect {
            (Some(d), Some("greeting"))
        } else {
            (None, None)
        };
        self.info.dialect = dialect;
        self.info.dialect_from = from;
        (self.info, self.anomalies)
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn cut(text: &[u8]) -> String {
    let mut ignored = AnomalyCounts::default();
    super::http::text_owned(text, MAX_TEXT, &mut ignored)
}

/// An RFC 3463 enhanced status code opening the text: `4.7.0 ...`.
fn is_enhanced(text: &str) -> bool {
    let code = text.split(' ').next().unwrap_or("");
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3
        && matches!(parts.first(), Some(&("2" | "4" | "5")))
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a stream's first bytes are a server reply (`client` false) or a client command.
/// `None` while too few bytes are at hand.
pub fn detect(b: &[u8], client: bool) -> Option<bool> {
    if client {
        let Some(nl) = b.iter().position(|&c| c == b'\n') else {
            return if b.len() >= 64 { Some(false) } else { None };
        };
        let line = trim_eol(b.get(..=nl).unwrap_or(b));
        let verb_end = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
        let verb =
            String::from_utf8_lossy(line.get(..verb_end).unwrap_or(&[])).to_ascii_uppercase();
        Some(
            SMTP_VERBS.contains(&verb.as_str())
                || FTP_VERBS.contains(&verb.as_str())
                || SHARED_VERBS.contains(&verb.as_str()),
        )
    } else {
        if b.len() < 4 {
            let digits = b.iter().take(3).all(u8::is_ascii_digit);
            return if digits { None } else { Some(false) };
        }
        let digits = b.get(..3).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let first = b.first().is_some_and(|d| (b'1'..=b'5').contains(d));
        Some(digits && first && matches!(b.get(3), Some(b' ' | b'-')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[(Direction, &str)]) -> ControlInfo {
        let mut c = Control::new(100);
        for (i, (d, l)) in lines.iter().enumerate() {
            c.data(*d, l.as_bytes(), Timestamp(i as i64));
        }
        c.finish().0
    }

    use Direction::{ClientToServer as C, ServerToClient as S};

    #[test]
    fn smtp_session_with_multiline_and_data() {
        let info = run(&[
            (S, "220 mx.example ESMTP Postfix\r\n"),
            (C, "EHLO client\r\n"),
            (S, "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
            (C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
            (S, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
            (C, "DATA\r\n"),
            (S, "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (C, "Subject: x\r\n\r\nQUIT\r\nRCPT TO:<x@y>\r\n.\r\n"),
            (S, "250 2.0.0 Ok: queued\r\n"),
            (C, "QUIT\r\n"),
            (S, "221 2.0.0 Bye\r\n"),
        ]);
        assert_eq!(info.dialect, Some(Dialect::Smtp));
        let codes: Vec<_> = info
            .replies
            .iter()
            .map(|r| (r.code, r.command.clone()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (220, None),
                (250, Some("EHLO".into())),
                (250, Some("MAIL".into())),
                (250, Some("RCPT".into())),
                (354, Some("DATA".into())),
                (250, Some("DATA".into())),
                (221, Some("QUIT".into())),
            ]
        );
        assert_eq!(info.replies[1].lines, 3);
        assert_eq!(info.commands, 5);
    }

    #[test]
    fn a_lone_421_greeting_has_no_dialect_unless_its_words_say() {
        let info = run(&[(
            S,
            "421 There are too many connected users, please try later.\r\n",
        )]);
        assert_eq!(info.dialect, None);
        assert_eq!(info.replies[0].code, 421);
        let info = run(&[(S, "421 4.7.0 mx Error: too many connections\r\n")]);
        assert_eq!(info.dialect, Some(Dialect::Smtp));
        let info = run(&[(S, "220 (vsFTPd 3.0.3)\r\n")]);
        assert_eq!(info.dialect, Some(Dialect::Ftp));
    }

    #[test]
    fn starttls_hands_over() {
        let mut c = Control::new(10);
        let t = Timestamp(0);
        c.data(S, b"220 x ESMTP\r\n", t);
        c.data(C, b"STARTTLS\r\n", t);
        assert_eq!(c.data(S, b"220 2.0.0 Ready\r\n\x16\x03\x01", t), Some(17));
        assert!(c.tls_starts());
    }

    #[test]
    fn detection() {
        assert_eq!(detect(b"220 ", false), Some(true));
        assert_eq!(detect(b"22", false), None);
        assert_eq!(detect(b"HTTP/1.1 200", false), Some(false));
        assert_eq!(detect(b"EHLO x\r\n", true), Some(true));
        assert_eq!(detect(b"GET / HTTP/1.1\r\n", true), Some(false));
    }
}
