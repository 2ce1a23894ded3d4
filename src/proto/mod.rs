//! Application protocols on reassembled streams: detection by content, then a parser per
//! connection. TLS now; HTTP/1, HTTP/2, FTP and SMTP will plug in behind it.
//!
//! Contract: [`ConnProto`] takes one connection's [`StreamEvent`]s and decides what it
//! carries from the bytes alone, never from ports. A TLS record header opening the client's
//! stream, or the server's when the client has said nothing (a capture that started
//! mid-connection), makes it TLS. Until it has decided, it holds the first bytes of each
//! direction (a handful: it decides as soon as one direction has a record header's worth),
//! then replays them to the chosen parser.

pub mod codec;
pub mod tls;

use crate::anomaly::AnomalyCounts;
use crate::flow::{Direction, StreamEvent};
use serde::Serialize;
use tls::keylog::KeyLog;
use tls::session::{AppData, TlsInfo, TlsSession};

/// Bytes needed to recognise a TLS record header and the handshake type behind it.
const DETECT_BYTES: usize = 6;

/// What a connection carries, as far as misdirect can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppProtocol {
    Tls,
    /// Not recognised (yet): cleartext protocols come with the HTTP issue.
    Unknown,
    /// The connection carried no payload.
    None,
}

enum State {
    Detecting { c2s: Vec<u8>, s2c: Vec<u8> },
    Tls(Box<TlsSession>),
    Unknown,
}

/// The protocol layer of one connection.
pub struct ConnProto {
    state: State,
}

/// What the protocol layer found, for the connection's record.
pub struct ProtoSummary {
    pub protocol: AppProtocol,
    pub tls: Option<TlsInfo>,
    pub anomalies: AnomalyCounts,
}

impl Default for ConnProto {
    fn default() -> Self {
        ConnProto {
            state: State::Detecting {
                c2s: Vec::new(),
                s2c: Vec::new(),
            },
        }
    }
}

impl ConnProto {
    /// Takes one stream event; decrypted application data goes to `out`.
    pub fn event(
        &mut self,
        dir: Direction,
        ev: StreamEvent<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if let State::Detecting { c2s, s2c } = &mut self.state {
            let buf = match dir {
                Direction::ClientToServer => &mut *c2s,
                Direction::ServerToClient => &mut *s2c,
            };
            match ev {
                StreamEvent::Data(d) => buf.extend_from_slice(d),
                // What was held no longer continues; look at what follows instead.
                StreamEvent::Gap(_) => buf.clear(),
                StreamEvent::Fin | StreamEvent::Rst => {}
            }
            let Some(next) = decide(c2s, s2c) else { return };
            let (c2s, s2c) = (std::mem::take(c2s), std::mem::take(s2c));
            self.state = next;
            for (d, held) in [
                (Direction::ClientToServer, c2s),
                (Direction::ServerToClient, s2c),
            ] {
                if !held.is_empty() {
                    self.event(d, StreamEvent::Data(&held), keylog, out);
                }
            }
            if matches!(ev, StreamEvent::Fin | StreamEvent::Rst) {
                self.event(dir, ev, keylog, out);
            }
            return;
        }
        if let State::Tls(tls) = &mut self.state {
            match ev {
                StreamEvent::Data(d) => tls.data(dir, d, keylog, out),
                StreamEvent::Gap(_) => tls.gap(dir, out),
                StreamEvent::Fin | StreamEvent::Rst => tls.end(dir),
            }
        }
    }

    pub fn finish(self, carried_payload: bool) -> ProtoSummary {
        match self.state {
            State::Tls(tls) => {
                let (info, anomalies) = tls.finish();
                ProtoSummary {
                    protocol: AppProtocol::Tls,
                    tls: Some(info),
                    anomalies,
                }
            }
            State::Detecting { .. } | State::Unknown => ProtoSummary {
                protocol: if carried_payload {
                    AppProtocol::Unknown
                } else {
                    AppProtocol::None
                },
                tls: None,
                anomalies: AnomalyCounts::default(),
            },
        }
    }
}

/// Decides as soon as either direction holds enough bytes; `None` to keep waiting. Both
/// buffers therefore stay below `DETECT_BYTES` plus one delivered piece.
fn decide(c2s: &[u8], s2c: &[u8]) -> Option<State> {
    let looks_tls = |b: &[u8]| tls::record::is_record_header(b);
    if c2s.len() >= DETECT_BYTES {
        return Some(if looks_tls(c2s) {
            tls_state()
        } else {
            State::Unknown
        });
    }
    if s2c.len() >= DETECT_BYTES {
        // The server spoke first, or the client has sent only a few bytes so far: decide on
        // the server's bytes, unless the client's contradict a TLS record header.
        let client_ok = c2s.is_empty() || could_start_tls_record(c2s);
        return Some(if client_ok && looks_tls(s2c) {
            tls_state()
        } else {
            State::Unknown
        });
    }
    None
}

/// Whether fewer than five bytes can be the start of a TLS record header.
fn could_start_tls_record(b: &[u8]) -> bool {
    let t = b.first().is_some_and(|t| (20..=24).contains(t));
    let major = b.get(1).is_none_or(|&m| m == 3);
    let minor = b.get(2).is_none_or(|&m| m <= 4);
    t && major && minor
}

fn tls_state() -> State {
    State::Tls(Box::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut ConnProto, dir: Direction, data: &[u8]) {
        p.event(
            dir,
            StreamEvent::Data(data),
            &KeyLog::default(),
            &mut |_, _| {},
        );
    }

    fn held(p: &ConnProto) -> Option<usize> {
        match &p.state {
            State::Detecting { c2s, s2c } => Some(c2s.len() + s2c.len()),
            _ => None,
        }
    }

    /// A client that sends a few bytes and a server that then streams must not make the
    /// detector hold the server's stream.
    #[test]
    fn short_client_prefix_and_a_streaming_server_decide_at_once() {
        let mut p = ConnProto::default();
        feed(&mut p, Direction::ClientToServer, b"GE");
        for _ in 0..1000 {
            feed(&mut p, Direction::ServerToClient, &[b'x'; 1000]);
        }
        assert_eq!(held(&p), None, "still detecting");
        assert!(matches!(p.state, State::Unknown));
        // A split TLS header from the client and TLS from the server: TLS.
        let mut p = ConnProto::default();
        feed(&mut p, Direction::ClientToServer, &[22, 3]);
        feed(&mut p, Direction::ServerToClient, &[22, 3, 3, 0, 2, 2, 0]);
        assert!(matches!(p.state, State::Tls(_)));
    }

    #[test]
    fn detection_needs_six_bytes() {
        let mut p = ConnProto::default();
        feed(&mut p, Direction::ClientToServer, &[22, 3, 1]);
        assert_eq!(held(&p), Some(3));
        feed(&mut p, Direction::ClientToServer, &[0, 5, 1]);
        assert!(matches!(p.state, State::Tls(_)));
    }
}
