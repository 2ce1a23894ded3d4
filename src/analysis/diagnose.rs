//! The 421 diagnosis: a finding, with its causes and evidence, for every HTTP 421, every
//! request that reached a server under another name than its TLS SNI, and every FTP/SMTP 421.
//!
//! Contract: [`diagnose`] reads the finished connection records (in id order) and returns
//! findings in a stable order (connection id, then request order); [`mark_first_party`]
//! marks each request first-party or reused. Every cause listed holds on the evidence shown;
//! `unexplained` is listed only when none does. Nothing here guesses past what the capture
//! shows: a request whose authority is unknown gets no authority-based cause. What a finding
//! says is here; which connections are in view when it is made is `window`'s business.

use super::authority::{default_port, same_host, Authority, NameSet, OriginSet};
use super::window::Window;
use super::ConnectionRecord;
use crate::flow::ConnId;
use crate::intern::ArcStr;
use crate::proto::http::{Exchange, Http2Info, HttpVersion};
use crate::proto::tls::session::TlsInfo;
use crate::proto::AppProtocol;
use crate::Timestamp;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

/// What a finding is about. Serialised by [`Kind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An HTTP response 421 Misdirected Request.
    Http421,
    /// A request answered (not 421) although its authority differs from the TLS SNI:
    /// coalescing that worked, or domain fronting.
    SniAuthorityMismatch,
    /// A request answered (not 421) whose `host` header names another host than its
    /// `:authority` or absolute-form target: servers differ in which one they go by.
    AuthorityHostMismatch,
    Ftp421,
    Smtp421,
    /// A 421 reply on an FTP or SMTP connection that nothing told apart.
    FtpOrSmtp421,
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Http421,
        Kind::SniAuthorityMismatch,
        Kind::AuthorityHostMismatch,
        Kind::Ftp421,
        Kind::Smtp421,
        Kind::FtpOrSmtp421,
    ];

    /// The name in reports and in `--fail-on`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http421 => "http_421",
            Kind::SniAuthorityMismatch => "sni_authority_mismatch",
            Kind::AuthorityHostMismatch => "authority_host_mismatch",
            Kind::Ftp421 => "ftp_421",
            Kind::Smtp421 => "smtp_421",
            Kind::FtpOrSmtp421 => "ftp_or_smtp_421",
        }
    }
}

/// Why a 421 happened (or why a request is worth a look). Serialised by [`Cause::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The TLS SNI names another host than the request's authority.
    SniMismatch,
    /// The TLS ClientHello carried no SNI.
    MissingSni,
    /// The connection had already carried a request for a different authority.
    ConnectionReuse,
    /// HTTP/2 `:authority` (or an absolute-form target) and the `host` header disagree.
    AuthorityHostConflict,
    /// A reverse proxy forwarded the request on an upstream connection whose SNI names
    /// another host than the request's authority.
    UpstreamSniMismatch,
    /// A reverse proxy relayed the 421 its upstream answered.
    Upstream421,
    /// Nothing visible explains it.
    Unexplained,
}

impl Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Cause {
    /// The name in reports (JSON, NDJSON, Parquet, finding totals).
    pub fn name(self) -> &'static str {
        match self {
            Cause::SniMismatch => "sni_mismatch",
            Cause::MissingSni => "missing_sni",
            Cause::ConnectionReuse => "connection_reuse",
            Cause::AuthorityHostConflict => "authority_host_conflict",
            Cause::UpstreamSniMismatch => "upstream_sni_mismatch",
            Cause::Upstream421 => "upstream_421",
            Cause::Unexplained => "unexplained",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub connection: ConnId,
    /// Index of the request in the connection's `requests` (or in its tunnel's, when
    /// `in_tunnel`); null for FTP/SMTP.
    pub request: Option<usize>,
    pub in_tunnel: bool,
    pub stream_id: Option<u32>,
    pub time: Option<Timestamp>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub sni: Option<String>,
    pub authority: Option<String>,
    pub status: Option<u16>,
    /// Cause names; empty for FTP/SMTP.
    pub causes: Vec<Cause>,
    pub evidence: Evidence,
    pub retry: Option<Retry>,
    /// The upstream leg this 421 was relayed from, when the capture holds it.
    pub upstream: Option<Upstream>,
    /// The client-side request this upstream request was made for (reverse proxy).
    pub downstream: Option<Downstream>,
    /// FTP/SMTP: the server's reply text.
    pub reply: Option<String>,
    /// The finding in plain words.
    pub explanation: String,
    /// Its connection's addresses and first packet, for the records that name it by them
    /// (NDJSON); the JSON report has the connection itself.
    #[serde(skip)]
    pub at: Option<FoundOn>,
}

/// The connection a finding was made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundOn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub source: crate::capture::Origin,
}

/// What the capture shows around a finding.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evidence {
    pub tls: bool,
    pub alpn: Option<crate::proto::tls::ProtocolName>,
    /// The authority of the connection's first request.
    pub first_authority: Option<String>,
    /// Earlier requests' authorities on this connection that differ from this one, the
    /// first [`MAX_LISTED`].
    pub earlier_authorities: Vec<String>,
    /// The `host` header, when sent besides `:authority` or an absolute-form target.
    pub host_header: Option<String>,
    /// DNS names of the server's certificate, the first [`MAX_LISTED`] (empty when not
    /// seen; the connection's `tls.server_names` has them all).
    pub certificate_names: Vec<String>,
    /// Whether the certificate covers the request's host; null when no certificate was seen.
    pub certificate_covers_authority: Option<bool>,
    /// The ORIGIN set the server declared (RFC 8336), the first [`MAX_LISTED`] origins
    /// (the connection's `http2.origin_set` has them all); null when it sent none.
    pub origin_set: Option<Vec<String>>,
    /// Whether the authority is in the ORIGIN set; null when there is none.
    pub in_origin_set: Option<bool>,
    pub server: Option<String>,
    /// Other connections to the same server address and port, the first [`MAX_LISTED`] in
    /// id order.
    pub same_server_connections: Vec<ConnId>,
}

/// Connections, authorities, certificate names and origins listed in one finding's
/// evidence. Every finding of a busy server would otherwise list every other connection to
/// it, and every 421 of a connection its certificate's thousand names or its server's
/// hundred thousand origins (quadratic in the capture); the verdicts
/// (`certificate_covers_authority`, `in_origin_set`) are made on the whole lists.
pub const MAX_LISTED: usize = 16;

/// Distinct authorities remembered per connection for `earlier_authorities`; a connection
/// that names more (each request another host) is not followed past them.
const MAX_DISTINCT_AUTHORITIES: usize = 64;

#[derive(Clone, Debug, Serialize)]
pub struct Retry {
    pub connection: ConnId,
    /// Index of the retried request in that connection's `requests`.
    pub request: usize,
    pub stream_id: Option<u32>,
    pub status: Option<u16>,
    pub sni: Option<String>,
    /// Time from the 421 to the retried request.
    pub after_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    pub connection: ConnId,
    /// Index of the upstream request in that connection's `requests`.
    pub request: usize,
    pub sni: Option<String>,
    pub authority: Option<String>,
    pub status: Option<u16>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Downstream {
    pub connection: ConnId,
    pub stream_id: Option<u32>,
}

/// Who a connection is between.
#[derive(Clone, Copy)]
struct Endpoints {
    id: ConnId,
    client: SocketAddr,
    server: SocketAddr,
}

impl Endpoints {
    fn of(c: &ConnectionRecord) -> Self {
        Endpoints {
            id: c.id,
            client: c.client,
            server: c.server,
        }
    }
}

/// A connection's HTTP as the diagnosis sees it: its own requests, or those in its tunnel
/// with the tunnel's TLS.
struct View<'a> {
    conn: Endpoints,
    in_tunnel: bool,
    /// The TLS facts: all of them for a record, none for a slimmed one ([`Slim`]), which
    /// keeps only whether it is TLS and its SNI (what other findings look up).
    tls: Option<&'a TlsInfo>,
    is_tls: bool,
    sni: Option<&'a str>,
    http2: Option<&'a Http2Info>,
    requests: &'a [Exchange],
    /// Made at the view's first finding: most views have none, and every connection has a
    /// view while the diagnosis runs.
    index: std::cell::OnceCell<Box<Index<'a>>>,
}

/// Every connection's views, and their numbers by client and by server address: a retry,
/// a proxy's upstream leg or its downstream one are looked for among the views of one
/// address, not all of them (every 421 of a capture of 117k connections scanned them all:
/// 15 s of its 35).
pub(super) struct Views<'a> {
    /// Each is boxed: the diagnosis runs when the connections' own state has just been
    /// freed, and a view takes the place of a freed piece, where one list of them all (117k
    /// views, 16 MB on a 100k-connection capture) would be new memory.
    #[allow(clippy::vec_box, reason = "see above")]
    list: Vec<Box<View<'a>>>,
    /// View numbers ordered by client address, then by number.
    by_client: Vec<usize>,
    /// View numbers ordered by server address, then by number.
    by_server: Vec<usize>,
}

impl<'a> Views<'a> {
    #[allow(clippy::vec_box, reason = "see `list`")]
    fn new(list: Vec<Box<View<'a>>>) -> Self {
        let order = |address: fn(&View<'a>) -> IpAddr| {
            let mut order: Vec<usize> = (0..list.len()).collect();
            // Stable: equal addresses keep the views' order.
            order.sort_by_key(|&vi| list.get(vi).map(|v| address(v)));
            order
        };
        Views {
            by_client: order(View::client_ip),
            by_server: order(View::server_ip),
            list,
        }
    }

    fn get(&self, vi: usize) -> Option<&View<'a>> {
        self.list.get(vi).map(|v| &**v)
    }

    /// The views whose client address is `ip`, in their order, with their numbers.
    fn of_client(&self, ip: IpAddr) -> impl Iterator<Item = (usize, &View<'a>)> {
        self.of(&self.by_client, ip, View::client_ip)
    }

    /// The views whose server address is `ip`, in their order, with their numbers.
    fn of_server(&self, ip: IpAddr) -> impl Iterator<Item = (usize, &View<'a>)> {
        self.of(&self.by_server, ip, View::server_ip)
    }

    fn of<'s>(
        &'s self,
        order: &'s [usize],
        ip: IpAddr,
        address: fn(&View<'a>) -> IpAddr,
    ) -> impl Iterator<Item = (usize, &'s View<'a>)> {
        let key = move |vi: &usize| self.get(*vi).map(address);
        let start = order.partition_point(|vi| key(vi) < Some(ip));
        order
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(move |vi| key(vi) == Some(ip))
            .filter_map(|&vi| Some((vi, self.get(vi)?)))
    }
}

/// What a view's findings look up, computed once for all of them.
struct Index<'a> {
    /// Request authorities of distinct origins in order of first appearance, as sent, with
    /// that request's index (at most `MAX_DISTINCT_AUTHORITIES`). Distinct by origin, so
    /// spellings of one host cannot fill the list.
    authorities: Vec<(usize, &'a str, Authority)>,
    names: NameSet,
    origins: OriginSet,
}

impl<'a> View<'a> {
    fn new(
        conn: Endpoints,
        in_tunnel: bool,
        tls: Option<&'a TlsInfo>,
        http2: Option<&'a Http2Info>,
        requests: &'a [Exchange],
    ) -> Self {
        View {
            conn,
            in_tunnel,
            tls,
            is_tls: tls.is_some(),
            sni: tls.and_then(|t| t.sni.as_deref()),
            http2,
            requests,
            index: std::cell::OnceCell::new(),
        }
    }

    fn index(&self) -> &Index<'a> {
        self.index.get_or_init(|| {
            let port = self.default_port();
            let mut authorities: Vec<(usize, &str, Authority)> = Vec::new();
            for (i, a) in self
                .requests
                .iter()
                .enumerate()
                .filter_map(|(i, r)| Some((i, r.authority.as_deref()?)))
            {
                if authorities.len() == MAX_DISTINCT_AUTHORITIES {
                    break;
                }
                let parsed = Authority::parse(a);
                if !authorities
                    .iter()
                    .any(|(_, _, seen)| seen.same_origin(&parsed, port))
                {
                    authorities.push((i, a, parsed));
                }
            }
            let names = self.tls.map_or(&[][..], |t| &t.server_names);
            let origins = self
                .http2
                .and_then(|h| h.origin_set.as_deref())
                .unwrap_or_default();
            Box::new(Index {
                authorities,
                names: NameSet::new(names),
                origins: OriginSet::new(origins, port),
            })
        })
    }

    fn client_ip(&self) -> IpAddr {
        self.conn.client.ip()
    }

    fn server_ip(&self) -> IpAddr {
        self.conn.server.ip()
    }

    fn sni(&self) -> Option<&'a str> {
        self.sni
    }

    fn default_port(&self) -> u16 {
        default_port(self.is_tls)
    }
}

/// A connection as the diagnosis holds it: its record, or once its own findings are
/// made and the record is not kept for the report, what other findings look up of it.
#[derive(Clone, Copy)]
pub(super) enum Held<'a> {
    Record(&'a ConnectionRecord),
    Slim(&'a Slim),
}

/// What other connections' findings look up of a diagnosed connection (`RetrySearch::find`,
/// `upstream_of`, `downstream_of`): its addresses, and for it and its tunnel whether they
/// are TLS, their SNI, and each request's method, authority, path, times, status and
/// stream. Records read back from a spill are slimmed so: a diagnosis holds the
/// connections open at one time, 100k of them on a busy capture, at about 250 bytes each
/// instead of a kilobyte.
pub(super) struct Slim {
    conn: Endpoints,
    pub(super) last_seen: Timestamp,
    outer: SlimPart,
    tunnel: Option<Box<SlimPart>>,
}

struct SlimPart {
    is_tls: bool,
    sni: Option<ArcStr>,
    requests: Box<[Exchange]>,
}

impl Slim {
    /// `c` slimmed; its texts are taken through `texts`, so that those repeated from
    /// connection to connection are kept once.
    pub(super) fn of(
        c: &ConnectionRecord,
        texts: &mut crate::intern::Interner<str, ArcStr>,
    ) -> Self {
        let mut text = |t: &Option<ArcStr>| t.as_deref().map(|t| texts.get(t));
        let mut part = |tls: &Option<Box<TlsInfo>>, requests: &[Exchange]| SlimPart {
            is_tls: tls.is_some(),
            sni: text(&tls.as_ref().and_then(|t| t.sni.clone())),
            requests: requests
                .iter()
                .map(|e| {
                    let mut slim = Exchange::default();
                    slim.stream_id = e.stream_id;
                    slim.request_time = e.request_time;
                    slim.method = text(&e.method);
                    slim.authority = text(&e.authority);
                    slim.path = text(&e.path);
                    slim.status = e.status;
                    slim.response_time = e.response_time;
                    slim
                })
                .collect(),
        };
        Slim {
            conn: Endpoints::of(c),
            last_seen: c.last_seen,
            outer: part(&c.tls, &c.requests),
            tunnel: c
                .tunnel
                .as_deref()
                .map(|t| Box::new(part(&t.tls, &t.requests))),
        }
    }
}

impl Held<'_> {
    /// Whether a record has a CONNECT tunnel, so two views.
    pub(super) fn views(&self) -> usize {
        match self {
            Held::Record(c) => 1 + usize::from(c.tunnel.is_some()),
            Held::Slim(s) => 1 + usize::from(s.tunnel.is_some()),
        }
    }
}

/// The views of `conns` (in id order): each connection's own, then its tunnel's.
pub(super) fn views<'a>(conns: impl Iterator<Item = Held<'a>>) -> Views<'a> {
    let mut v = Vec::new();
    for held in conns {
        let c = match held {
            Held::Record(c) => c,
            Held::Slim(s) => {
                let parts = std::iter::once((false, &s.outer))
                    .chain(s.tunnel.as_deref().map(|t| (true, t)));
                for (in_tunnel, p) in parts {
                    v.push(Box::new(View {
                        conn: s.conn,
                        in_tunnel,
                        tls: None,
                        is_tls: p.is_tls,
                        sni: p.sni.as_deref(),
                        http2: None,
                        requests: &p.requests,
                        index: std::cell::OnceCell::new(),
                    }));
                }
                continue;
            }
        };
        // The connection, then what its CONNECT tunnel carried.
        let outer = (false, c.tls.as_deref(), c.http2.as_deref(), &c.requests);
        let inner = c
            .tunnel
            .as_deref()
            .map(|t| (true, t.tls.as_deref(), t.http2.as_deref(), &t.requests));
        for (tunnelled, tls, http2, requests) in std::iter::once(outer).chain(inner) {
            v.push(Box::new(View::new(
                Endpoints::of(c),
                tunnelled,
                tls,
                http2,
                requests,
            )));
        }
    }
    Views::new(v)
}

/// Other connections to the server of `id`, from the first `MAX_LISTED + 1` connections
/// to it (`window` keeps them).
pub(super) fn others(same_server: &[ConnId], id: ConnId) -> Vec<ConnId> {
    same_server
        .iter()
        .copied()
        .filter(|&o| o != id)
        .take(MAX_LISTED)
        .collect()
}

/// A 421 as soon as it is seen on a connection still open (live capture): its causes from
/// that connection alone (no retry or proxy leg can be known yet).
pub fn preliminary(
    id: ConnId,
    client: SocketAddr,
    server: SocketAddr,
    tls: Option<&TlsInfo>,
    http2: Option<&Http2Info>,
    requests: &[Exchange],
    i: usize,
) -> Option<Finding> {
    requests.get(i)?;
    let views = Views::new(vec![Box::new(View::new(
        Endpoints { id, client, server },
        false,
        tls,
        http2,
        requests,
    ))]);
    let (mut causes, evidence) = assess(&views, 0, i);
    if causes.is_empty() {
        causes.push(Cause::Unexplained);
    }
    let (v, e) = at(&views, 0, i);
    let mut f = finding(Kind::Http421, v, i, e, causes, evidence);
    f.explanation = explain_421(&f, v);
    Some(f)
}

/// Marks each request first-party (its host is the SNI's, or on a connection without SNI,
/// the first request's) or not.
pub fn mark_first_party(c: &mut ConnectionRecord) {
    let sni = c.tls.as_ref().and_then(|t| t.sni.clone());
    mark(&mut c.requests, sni.as_deref());
    if let Some(t) = c.tunnel.as_mut() {
        let sni = t.tls.as_ref().and_then(|t| t.sni.clone());
        mark(&mut t.requests, sni.as_deref());
    }
}

fn mark(requests: &mut [Exchange], sni: Option<&str>) {
    let opened_for = sni.map(str::to_string).or_else(|| {
        requests
            .iter()
            .find_map(|e| e.authority.as_deref().map(str::to_string))
    });
    for e in requests {
        e.first_party = match (&e.authority, &opened_for) {
            (Some(a), Some(o)) => Some(same_host(a, o)),
            _ => None,
        };
    }
}

/// All findings of a capture, in connection then request order: `conns` (in id order)
/// through one [`Window`].
pub fn diagnose(conns: &[Box<ConnectionRecord>]) -> Vec<Finding> {
    let mut window = Window::new();
    for c in conns {
        window.push(&**c, &mut |_| {});
    }
    window.finish(&mut |_| {}).0
}

/// Until when a connection's findings may change with connections yet to come, when they
/// may: the answer to its last 421 whose upstream leg (a request a proxy sent while it
/// waited, `upstream_of`) may be on a connection that starts up to that answer.
pub(super) fn waits_until(c: &ConnectionRecord) -> Option<Timestamp> {
    http_421s(c)
        .filter_map(|e| e.request_time.and(e.response_time))
        .max()
}

/// The earliest time the lookups for this connection's findings ask about (for its 421s'
/// upstream legs and retries), when they ask at all.
pub(super) fn asks_from(c: &ConnectionRecord) -> Option<Timestamp> {
    http_421s(c)
        .filter_map(|e| e.request_time.or(e.response_time))
        .min()
}

/// The HTTP 421s of `c`, on it and in its tunnel.
fn http_421s(c: &ConnectionRecord) -> impl Iterator<Item = &Exchange> {
    let tunnel = c.tunnel.as_deref().map(|t| &t.requests[..]);
    c.requests
        .iter()
        .chain(tunnel.unwrap_or_default())
        .filter(|e| e.status == Some(421))
}

/// The findings of connection `c`, whose views in `views` start at number `first`: its
/// HTTP requests', then its FTP/SMTP replies'. A 421 comes with the search for its retry,
/// which `window` carries on as later connections arrive.
pub(super) fn findings_of(
    views: &Views<'_>,
    first: usize,
    c: &ConnectionRecord,
    out: &mut dyn FnMut(Finding, Option<RetrySearch>),
) {
    let at = FoundOn {
        client: c.client,
        server: c.server,
        source: c.source,
    };
    let out = &mut |mut f: Finding, search| {
        f.at = Some(at);
        out(f, search)
    };
    let own = (first..).take_while(|&vi| views.get(vi).is_some_and(|v| v.conn.id == c.id));
    for vi in own {
        let Some(v) = views.get(vi) else { break };
        for (i, e) in v.requests.iter().enumerate() {
            let answered_elsewhere = e.status.is_some() && e.status != Some(421);
            let mismatch =
                matches!((v.sni(), &e.authority), (Some(s), Some(a)) if !same_host(s, a));
            if e.status == Some(421) {
                let mut f = http_421(views, vi, i);
                let search = RetrySearch::of(v, e);
                if search.is_none() {
                    end_search(&mut f, None);
                }
                out(f, search);
            } else if answered_elsewhere && mismatch {
                out(mismatch_finding(views, vi, i), None);
            } else if answered_elsewhere && host_conflict(e) {
                out(host_conflict_finding(views, vi, i), None);
            }
        }
    }
    let Some(ctl) = &c.control else { return };
    for r in ctl.replies.iter().filter(|r| r.code == 421) {
        let (kind, word) = match c.protocol {
            AppProtocol::Ftp => (Kind::Ftp421, "FTP"),
            AppProtocol::Smtp => (Kind::Smtp421, "SMTP"),
            _ => (Kind::FtpOrSmtp421, "FTP or SMTP"),
        };
        let when = if r.command.is_none() {
            "instead of its greeting".to_string()
        } else {
            format!("to {}", r.command.as_deref().unwrap_or("?"))
        };
        let f = Finding {
            kind,
            connection: c.id,
            request: None,
            in_tunnel: false,
            stream_id: None,
            time: Some(r.time),
            method: None,
            path: None,
            sni: None,
            authority: None,
            status: Some(421),
            causes: Vec::new(),
            evidence: Evidence {
                server: Some(c.server.to_string()),
                ..Evidence::default()
            },
            retry: None,
            upstream: None,
            downstream: None,
            reply: Some(r.text.clone()),
            at: None,
            explanation: format!(
                "Connection {} to {}: the {word} server answered 421 {when} (\"{}\"). \
                 This is {word}'s \"service not available\", not HTTP's Misdirected \
                 Request: the server is refusing connections (often a per-client or total \
                 connection limit).",
                c.id.0, c.server, r.text
            ),
        };
        out(f, None);
    }
}

/// The findings of a connection without HTTP 421s ([`asks_from`] is none): made from it
/// alone.
pub(super) fn findings_alone(c: &ConnectionRecord, out: &mut dyn FnMut(Finding)) {
    let views = views(std::iter::once(Held::Record(c)));
    findings_of(&views, 0, c, &mut |f, _| out(f));
}

/// Findings in their report order: connection, then request (FTP/SMTP replies, which have
/// none, first), then time.
pub(super) fn order(findings: &mut [Finding]) {
    findings.sort_by_key(|f| (f.connection, f.in_tunnel, f.request, f.time));
}

/// The evidence and the causes that hold for request `i` of view `vi`.
fn assess(views: &Views<'_>, vi: usize, i: usize) -> (Vec<Cause>, Evidence) {
    let Some(v) = views.get(vi) else {
        return (vec![Cause::Unexplained], Evidence::default());
    };
    let Some(e) = v.requests.get(i) else {
        return (vec![Cause::Unexplained], Evidence::default());
    };
    let mut causes = Vec::new();
    let port = v.default_port();
    let authority = e.authority.as_deref().map(Authority::parse);
    if v.is_tls {
        match (v.sni, &e.authority) {
            (None, _) => causes.push(Cause::MissingSni),
            (Some(s), Some(a)) if !same_host(s, a) => causes.push(Cause::SniMismatch),
            _ => {}
        }
    }
    let earlier: Vec<String> = match &authority {
        Some(a) => v
            .index()
            .authorities
            .iter()
            .take_while(|(first, _, _)| *first < i)
            .filter(|(_, _, p)| !p.same_origin(a, port))
            .map(|(_, p, _)| p.to_string())
            .take(MAX_LISTED)
            .collect(),
        None => Vec::new(),
    };
    if !earlier.is_empty() {
        causes.push(Cause::ConnectionReuse);
    }
    // A host header that disagrees with the authority the server goes by.
    let host_header = match (e.version, &e.host, &e.authority) {
        (Some(HttpVersion::Http2), Some(h), _) => Some(h.to_string()),
        (_, Some(h), Some(a)) if h != a => Some(h.to_string()),
        _ => None,
    };
    if let (Some(h), Some(a)) = (host_header.as_deref(), e.authority.as_deref()) {
        if !same_host(h, a) {
            causes.push(Cause::AuthorityHostConflict);
        }
    }
    let names: &[String] = v.tls.map_or(&[], |t| &t.server_names);
    let covers = match (&e.authority, names.is_empty()) {
        (Some(a), false) => Some(v.index().names.covers(a)),
        _ => None,
    };
    let origin_set = v.http2.and_then(|h| h.origin_set.as_ref());
    let in_origin_set = match (origin_set, &authority) {
        (Some(_), Some(a)) => Some(v.index().origins.contains(a)),
        _ => None,
    };
    let evidence = Evidence {
        tls: v.is_tls,
        alpn: v.tls.and_then(|t| t.alpn.clone()),
        first_authority: v.index().authorities.first().map(|(_, a, _)| a.to_string()),
        earlier_authorities: earlier,
        host_header,
        certificate_names: names.iter().take(MAX_LISTED).cloned().collect(),
        certificate_covers_authority: covers,
        origin_set: origin_set.map(|set| set.iter().take(MAX_LISTED).cloned().collect()),
        in_origin_set,
        server: Some(v.conn.server.to_string()),
        // Filled in when every connection to the server is known (`window`).
        same_server_connections: Vec::new(),
    };
    (causes, evidence)
}

fn http_421(views: &Views<'_>, vi: usize, i: usize) -> Finding {
    let (mut causes, evidence) = assess(views, vi, i);
    let (v, e) = at(views, vi, i);
    let upstream = upstream_of(views, vi, i);
    if let Some((uv, ui)) = upstream {
        let (ucauses, _) = assess(views, uv, ui);
        let (u, ue) = at(views, uv, ui);
        let sni_differs = match (u.sni(), &e.authority) {
            (Some(s), Some(a)) => !same_host(s, a),
            _ => false,
        };
        if sni_differs || ucauses.contains(&Cause::SniMismatch) {
            causes.push(Cause::UpstreamSniMismatch);
        }
        if ue.status == Some(421) {
            causes.push(Cause::Upstream421);
        }
    }
    if causes.is_empty() {
        causes.push(Cause::Unexplained);
    }
    let upstream = upstream.map(|(uv, ui)| {
        let (u, ue) = at(views, uv, ui);
        Upstream {
            connection: u.conn.id,
            request: ui,
            sni: u.sni().map(str::to_string),
            authority: ue.authority.as_deref().map(str::to_string),
            status: ue.status,
        }
    });
    let mut f = finding(Kind::Http421, v, i, e, causes, evidence);
    f.upstream = upstream;
    // The retry's sentence is added when the search for it ends (`RetrySearch`).
    f.explanation = explain_421(&f, v);
    f
}

fn mismatch_finding(views: &Views<'_>, vi: usize, i: usize) -> Finding {
    let (causes, evidence) = assess(views, vi, i);
    let (v, e) = at(views, vi, i);
    let mut f = finding(Kind::SniAuthorityMismatch, v, i, e, causes, evidence);
    let covered = match f.evidence.certificate_covers_authority {
        Some(true) => {
            "its certificate covers that name, so this is connection coalescing that worked"
        }
        Some(false) => {
            "its certificate does not cover that name: domain fronting, or a server that ignores SNI"
        }
        None => "its certificate was not seen",
    };
    f.explanation = format!(
        "Connection {}{} (SNI {}) carried {} {} for {} and the server answered {}; {}. \
         A server that checks SNI against the authority would answer 421 here.",
        v.conn.id.0,
        tunnel_words(v),
        f.sni.as_deref().unwrap_or("none"),
        f.method.as_deref().unwrap_or("a request"),
        f.path.as_deref().unwrap_or(""),
        f.authority.as_deref().unwrap_or("?"),
        f.status.map_or("nothing".into(), |s| s.to_string()),
        covered
    );
    f
}

/// The `host` header names another host than the authority the request goes by.
fn host_conflict(e: &Exchange) -> bool {
    match (&e.host, &e.authority) {
        (Some(h), Some(a)) => !same_host(h, a),
        _ => false,
    }
}

fn host_conflict_finding(views: &Views<'_>, vi: usize, i: usize) -> Finding {
    let (causes, evidence) = assess(views, vi, i);
    let (v, e) = at(views, vi, i);
    let mut f = finding(Kind::AuthorityHostMismatch, v, i, e, causes, evidence);
    f.explanation = format!(
        "Connection {}{} carried {} {} for {} with a host header naming {}; the server \
         answered {}. It went by one of the two; a server or proxy that goes by the other \
         would route it elsewhere, or answer 421.",
        v.conn.id.0,
        tunnel_words(v),
        f.method.as_deref().unwrap_or("a request"),
        f.path.as_deref().unwrap_or(""),
        f.authority.as_deref().unwrap_or("?"),
        e.host.as_deref().unwrap_or("?"),
        f.status.map_or("nothing".into(), |s| s.to_string()),
    );
    f
}

fn at<'v, 'a>(views: &'v Views<'a>, vi: usize, i: usize) -> (&'v View<'a>, &'a Exchange) {
    // Indices come from iterating these same views.
    #[allow(clippy::indexing_slicing)]
    let v = &views.list[vi];
    #[allow(clippy::indexing_slicing)]
    let e = &v.requests[i];
    (v, e)
}

fn finding(
    kind: Kind,
    v: &View<'_>,
    i: usize,
    e: &Exchange,
    causes: Vec<Cause>,
    evidence: Evidence,
) -> Finding {
    Finding {
        kind,
        connection: v.conn.id,
        request: Some(i),
        in_tunnel: v.in_tunnel,
        stream_id: e.stream_id.map(NonZeroU32::get),
        time: e.request_time.or(e.response_time),
        method: e.method.as_deref().map(str::to_string),
        path: e.path.as_deref().map(str::to_string),
        sni: v.sni().map(str::to_string),
        authority: e.authority.as_deref().map(str::to_string),
        status: e.status,
        causes,
        evidence,
        retry: None,
        upstream: None,
        downstream: None,
        reply: None,
        explanation: String::new(),
        at: None,
    }
}

/// The search for a 421's retry: the first later request from the same client address
/// with the same method, authority and path on another connection. It is made in steps,
/// each over the requests sent in one span of time ([`RetrySearch::find`]), so a 421 can be
/// reported before the connections that follow it in the capture are all known.
pub(super) struct RetrySearch {
    conn: ConnId,
    client: IpAddr,
    method: Option<ArcStr>,
    path: Option<ArcStr>,
    authority: Authority,
    /// The port the 421's connection implies when an authority names none.
    port: u16,
    /// When the 421 was answered (sent, when the answer was not seen).
    after: Timestamp,
}

impl RetrySearch {
    /// The search for a retry of `e`, a 421 in view `v`; none when it names no authority or
    /// was seen at no time.
    fn of(v: &View<'_>, e: &Exchange) -> Option<Self> {
        Some(RetrySearch {
            conn: v.conn.id,
            client: v.conn.client.ip(),
            method: e.method.clone(),
            path: e.path.clone(),
            authority: Authority::parse(e.authority.as_deref()?),
            port: v.default_port(),
            after: e.response_time.or(e.request_time)?,
        })
    }

    pub(super) fn after(&self) -> Timestamp {
        self.after
    }

    /// The retry among the requests of `views` sent from `from` and before `to` (`None`:
    /// at any time after): the earliest, and of those the first in view order. Sound when
    /// `views` holds every connection with a request in that span, and every one with a
    /// request that began before `to` and ended after `from` (for [`is_upstream`]).
    pub(super) fn find(
        &self,
        views: &Views<'_>,
        from: Timestamp,
        to: Option<Timestamp>,
    ) -> Option<Retry> {
        let from = from.max(self.after);
        let mut best: Option<(Timestamp, Retry)> = None;
        for (oi, o) in views.of_client(self.client) {
            if o.conn.id == self.conn {
                continue;
            }
            for (j, r) in o.requests.iter().enumerate() {
                let Some(t) = r
                    .request_time
                    .filter(|t| *t >= from && to.is_none_or(|to| *t < to))
                else {
                    continue;
                };
                let same = r.method == self.method
                    && (self.path.is_none() || r.path == self.path)
                    && r.authority.as_deref().is_some_and(|a| {
                        Authority::parse(a).same_origin(&self.authority, self.port)
                    });
                if !same
                    || best.as_ref().is_some_and(|(bt, _)| *bt <= t)
                    || is_upstream(views, oi, j)
                {
                    continue;
                }
                best = Some((
                    t,
                    Retry {
                        connection: o.conn.id,
                        request: j,
                        stream_id: r.stream_id.map(NonZeroU32::get),
                        status: r.status,
                        sni: o.sni().map(str::to_string),
                        after_ms: t.since(self.after) as f64 / 1e6,
                    },
                ));
            }
        }
        best.map(|(_, r)| r)
    }
}

/// Whether request `j` of view `oi` is a reverse proxy's upstream request: made from the
/// address of a server that was, at that moment, answering a request of its own client on a
/// connection to a different server endpoint.
fn is_upstream(views: &Views<'_>, oi: usize, j: usize) -> bool {
    downstream_of(views, oi, j).is_some()
}

fn downstream_of(views: &Views<'_>, oi: usize, j: usize) -> Option<(usize, usize)> {
    let (o, r) = at(views, oi, j);
    let t = r.request_time?;
    views.of_server(o.conn.client.ip()).find_map(|(fi, f)| {
        let proxy = f.conn.server != o.conn.server && f.conn.id != o.conn.id;
        if !proxy {
            return None;
        }
        f.requests.iter().position(|fr| {
            matches!((fr.request_time, fr.response_time), (Some(a), Some(b)) if a <= t && t <= b)
        })
        .map(|k| (fi, k))
    })
}

/// The upstream request a reverse proxy made for request `i` of view `vi`: on a connection
/// from this connection's server address to another server, sent while this request waited
/// for its answer; the closest in time, preferring one that was itself answered 421.
fn upstream_of(views: &Views<'_>, vi: usize, i: usize) -> Option<(usize, usize)> {
    let (v, e) = at(views, vi, i);
    let (t0, t1) = (e.request_time?, e.response_time?);
    let mut best: Option<((bool, i64), (usize, usize))> = None;
    for (ui, u) in views.of_client(v.conn.server.ip()) {
        let from_proxy = u.conn.server != v.conn.server && u.conn.id != v.conn.id;
        if !from_proxy {
            continue;
        }
        for (j, r) in u.requests.iter().enumerate() {
            let Some(t) = r.request_time.filter(|t| *t >= t0 && *t <= t1) else {
                continue;
            };
            let key = (r.status != Some(421), t.since(t0));
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((key, (ui, j)));
            }
        }
    }
    best.map(|(_, at)| at)
}

/// Upstream findings name the client-side request they served (FTP/SMTP replies have no
/// request to name).
pub(super) fn link_downstream(findings: &mut [Finding]) {
    let links: Vec<(ConnId, Option<u32>, ConnId)> = findings
        .iter()
        .filter_map(|f| {
            f.upstream
                .as_ref()
                .map(|u| (f.connection, f.stream_id, u.connection))
        })
        .collect();
    for f in findings.iter_mut().filter(|f| f.request.is_some()) {
        if let Some((c, s, _)) = links.iter().find(|(_, _, u)| *u == f.connection) {
            f.downstream = Some(Downstream {
                connection: *c,
                stream_id: *s,
            });
            f.explanation.push_str(&format!(
                " This was a reverse proxy's upstream request for connection {}{}.",
                c.0,
                s.map_or(String::new(), |s| format!(" stream {s}"))
            ));
        }
    }
}

fn tunnel_words(v: &View<'_>) -> &'static str {
    if v.in_tunnel {
        " (inside its CONNECT tunnel)"
    } else {
        ""
    }
}

/// The paragraph a person reads, but for what the client did next ([`retry_words`]).
fn explain_421(f: &Finding, v: &View<'_>) -> String {
    let ev = &f.evidence;
    let mut s = format!(
        "Connection {}{} ({}{}) carried {} {}{} for {}{}, and the server refused it with 421 \
         Misdirected Request.",
        v.conn.id.0,
        tunnel_words(v),
        match (&f.sni, ev.tls) {
            (Some(sni), _) => format!("TLS, SNI {sni}"),
            (None, true) => "TLS without SNI".to_string(),
            (None, false) => "cleartext".to_string(),
        },
        if ev.certificate_names.is_empty() {
            String::new()
        } else {
            format!(", certificate for {}", ev.certificate_names.join(", "))
        },
        f.method.as_deref().unwrap_or("a request"),
        f.path.as_deref().unwrap_or("(path unknown)"),
        f.stream_id
            .map_or(String::new(), |s| format!(" on HTTP/2 stream {s}")),
        f.authority.as_deref().unwrap_or("an unknown authority"),
        if ev.earlier_authorities.is_empty() {
            String::new()
        } else {
            format!(" after requests for {}", ev.earlier_authorities.join(", "))
        },
    );
    for c in &f.causes {
        s.push(' ');
        s.push_str(&match c {
            Cause::SniMismatch => format!(
                "The TLS handshake named {} but the request names {}: servers that bind a \
                 connection to its SNI refuse other hosts.",
                f.sni.as_deref().unwrap_or("?"),
                f.authority.as_deref().unwrap_or("?")
            ),
            Cause::MissingSni => "The ClientHello carried no SNI, so the server could not \
                 match the connection to the requested host."
                .to_string(),
            Cause::ConnectionReuse => {
                let mut w = "The client reused a connection opened for another origin".to_string();
                if f.stream_id.is_some() {
                    w.push_str(" (HTTP/2 connection coalescing)");
                }
                let host = f
                    .authority
                    .as_deref()
                    .map_or("?".to_string(), |a| Authority::parse(a).host);
                match ev.certificate_covers_authority {
                    Some(true) => w.push_str(&format!("; the certificate covers {host}")),
                    Some(false) => {
                        w.push_str(&format!("; the certificate does not even cover {host}"))
                    }
                    None => {}
                }
                match ev.in_origin_set {
                    Some(true) => w.push_str(" and the server's ORIGIN frame listed it"),
                    Some(false) => w.push_str(" but the server's ORIGIN frame did not list it"),
                    None if ev.alpn.as_deref() == Some("h2") || f.stream_id.is_some() => {
                        w.push_str(" and the server sent no ORIGIN frame")
                    }
                    None => {}
                }
                w.push('.');
                w
            }
            Cause::AuthorityHostConflict => format!(
                "The host header ({}) disagrees with the authority the server goes by.",
                ev.host_header.as_deref().unwrap_or("?")
            ),
            Cause::UpstreamSniMismatch => match &f.upstream {
                Some(u) => format!(
                    "A reverse proxy forwarded it on upstream connection {} with SNI {} while \
                     the request names {}: the proxy sent the wrong SNI to its backend.",
                    u.connection.0,
                    u.sni.as_deref().unwrap_or("(none)"),
                    u.authority
                        .as_deref()
                        .or(f.authority.as_deref())
                        .unwrap_or("?")
                ),
                None => String::new(),
            },
            Cause::Upstream421 => match &f.upstream {
                Some(u) => format!(
                    "The backend answered 421 on upstream connection {} and the proxy relayed it.",
                    u.connection.0
                ),
                None => String::new(),
            },
            Cause::Unexplained if f.authority.is_none() => "The request itself was not \
                 captured or decoded, so its authority is unknown and the capture cannot say \
                 why."
                .to_string(),
            Cause::Unexplained => format!(
                "Nothing in the capture explains it: {} and the connection served no other \
                 origin. Look at the server's configuration (virtual hosts, certificates, TLS \
                 settings per host).",
                if ev.tls {
                    "the SNI and the authority agree"
                } else {
                    "the connection is cleartext"
                }
            ),
        });
    }
    s
}

/// A 421's search for its retry is over: `retry` is what it found.
pub(super) fn end_search(f: &mut Finding, retry: Option<Retry>) {
    f.explanation.push(' ');
    f.explanation.push_str(&retry_words(retry.as_ref()));
    f.retry = retry;
}

/// The sentence of a 421's explanation that says what the client did next.
fn retry_words(retry: Option<&Retry>) -> String {
    match retry {
        Some(r) => format!(
            "The client retried {:.1} ms later on connection {} (SNI {}) and got {}.",
            r.after_ms,
            r.connection.0,
            r.sni.as_deref().unwrap_or("none"),
            r.status.map_or("no response".into(), |s| s.to_string())
        ),
        None => "The capture shows no retry on another connection.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        id: u64,
        client: &str,
        server: &str,
        sni: Option<&str>,
        requests: Vec<Exchange>,
    ) -> Box<ConnectionRecord> {
        let mut tls = TlsInfo::default();
        tls.sni = sni.map(crate::intern::ArcStr::from);
        tls.server_names = ["*.example.test".to_string()].into();
        Box::new(ConnectionRecord {
            protocol: AppProtocol::Http2,
            tls: Some(Box::new(tls)),
            requests,
            ..ConnectionRecord::bare(ConnId(id), client.parse().unwrap(), server.parse().unwrap())
        })
    }

    /// The views of one address are those of a scan of them all, in the same order.
    #[test]
    fn views_by_address_are_those_of_a_scan() {
        let clients = [
            "10.0.0.2",
            "10.0.0.1",
            "[2001:db8::1]",
            "10.0.0.2",
            "10.0.0.9",
        ];
        let servers = [
            "10.0.0.9",
            "10.0.0.5",
            "10.0.0.5",
            "[2001:db8::2]",
            "10.0.0.5",
        ];
        let conns: Vec<_> = (0..15)
            .map(|n| {
                let (c, s) = (clients[n % 5], servers[(n * 3) % 5]);
                record(
                    n as u64,
                    &format!("{c}:{}", 1000 + n),
                    &format!("{s}:443"),
                    None,
                    vec![],
                )
            })
            .collect();
        let views = views(conns.iter().map(|c| Held::Record(c)));
        let addresses = clients
            .iter()
            .chain(&servers)
            .map(|a| a.trim_matches(['[', ']']).parse::<IpAddr>().unwrap());
        for ip in addresses.chain(["192.0.2.1".parse().unwrap()]) {
            let scan = |f: fn(&View<'_>) -> IpAddr| -> Vec<usize> {
                (0..views.list.len())
                    .filter(|&vi| f(views.get(vi).unwrap()) == ip)
                    .collect()
            };
            let ids = |it: &mut dyn Iterator<Item = (usize, &View<'_>)>| -> Vec<usize> {
                it.map(|(vi, _)| vi).collect()
            };
            assert_eq!(
                ids(&mut views.of_client(ip)),
                scan(|v| v.conn.client.ip()),
                "{ip}"
            );
            assert_eq!(
                ids(&mut views.of_server(ip)),
                scan(|v| v.conn.server.ip()),
                "{ip}"
            );
        }
    }

    fn get(authority: &str, host: Option<&str>, t: i64, status: u16) -> Exchange {
        let mut e = Exchange::default();
        e.stream_id = NonZeroU32::new(1);
        e.version = Some(HttpVersion::Http2);
        e.request_seen = true;
        e.request_time = Some(Timestamp(t));
        e.response_time = Some(Timestamp(t + 10));
        e.method = Some("GET".into());
        e.authority = Some(authority.into());
        e.host = host.map(Into::into);
        e.path = Some("/".into());
        e.status = Some(status);
        e
    }

    fn causes(f: &Finding) -> Vec<&'static str> {
        f.causes.iter().map(|c| c.name()).collect()
    }

    #[test]
    fn missing_sni_and_host_conflict() {
        let conns = vec![
            record(
                1,
                "10.0.0.1:1000",
                "10.0.0.9:443",
                None,
                vec![get("a.example.test", None, 0, 421)],
            ),
            record(
                2,
                "10.0.0.1:1001",
                "10.0.0.9:443",
                Some("a.example.test"),
                vec![get("a.example.test", Some("b.example.test"), 100, 421)],
            ),
        ];
        let f = diagnose(&conns);
        assert_eq!(causes(&f[0]), ["missing_sni"]);
        assert_eq!(causes(&f[1]), ["authority_host_conflict"]);
        assert_eq!(f[1].evidence.host_header.as_deref(), Some("b.example.test"));
    }

    #[test]
    fn unexplained_only_when_nothing_holds_and_retries_need_the_same_client() {
        let conns = vec![
            record(
                1,
                "10.0.0.1:1000",
                "10.0.0.9:443",
                Some("a.example.test"),
                vec![get("a.example.test", None, 0, 421)],
            ),
            // Another client asking the same: not a retry.
            record(
                2,
                "10.0.0.2:1000",
                "10.0.0.9:443",
                Some("a.example.test"),
                vec![get("a.example.test", None, 50, 200)],
            ),
            // The same client, later: the retry.
            record(
                3,
                "10.0.0.1:1002",
                "10.0.0.9:443",
                Some("a.example.test"),
                vec![get("a.example.test:443", None, 90, 200)],
            ),
        ];
        let f = diagnose(&conns);
        assert_eq!(f.len(), 1);
        assert_eq!(causes(&f[0]), ["unexplained"]);
        let r = f[0].retry.as_ref().unwrap();
        assert_eq!((r.connection, r.status), (ConnId(3), Some(200)));
        assert_eq!(
            f[0].evidence.same_server_connections,
            [ConnId(2), ConnId(3)]
        );
    }

    #[test]
    fn answered_under_another_name_is_a_finding_and_origin_sets_are_evidence() {
        let mut c = record(
            1,
            "10.0.0.1:1000",
            "10.0.0.9:443",
            Some("a.example.test"),
            vec![
                get("a.example.test", None, 0, 200),
                get("b.example.test", None, 20, 200),
                get("c.example.test", None, 40, 421),
            ],
        );
        c.http2 = Some(Box::new(Http2Info {
            origin_set: Some(vec!["https://b.example.test".into()]),
            ..Http2Info::default()
        }));
        let f = diagnose(&[c]);
        assert_eq!(f[0].kind, Kind::SniAuthorityMismatch);
        assert_eq!(f[0].evidence.in_origin_set, Some(true));
        assert!(f[0].explanation.contains("coalescing that worked"));
        assert_eq!(f[1].kind, Kind::Http421);
        assert_eq!(causes(&f[1]), ["sni_mismatch", "connection_reuse"]);
        assert_eq!(f[1].evidence.in_origin_set, Some(false));
        assert!(f[1].explanation.contains("ORIGIN frame did not list it"));
    }

    #[test]
    fn evidence_lists_the_first_names_and_origins_and_judges_by_all() {
        // A certificate of 1000 names and an ORIGIN set of 1000 origins, the request's
        // host last in both: every 421 used to copy both lists whole.
        let mut c = record(
            1,
            "10.0.0.1:1000",
            "10.0.0.9:443",
            Some("z.example.test"),
            vec![get("z.example.test", None, 0, 421)],
        );
        let mut names: Vec<String> = (0..999).map(|i| format!("n{i}.test")).collect();
        names.push("z.example.test".into());
        let origins = names.iter().map(|n| format!("https://{n}")).collect();
        c.tls.as_mut().unwrap().server_names = names.into();
        c.http2 = Some(Box::new(Http2Info {
            origin_set: Some(origins),
            ..Http2Info::default()
        }));
        let f = diagnose(&[c]);
        let e = &f[0].evidence;
        assert_eq!(e.certificate_names.len(), MAX_LISTED);
        assert_eq!(e.origin_set.as_ref().unwrap().len(), MAX_LISTED);
        assert_eq!(e.certificate_covers_authority, Some(true));
        assert_eq!(e.in_origin_set, Some(true));
    }

    #[test]
    fn spellings_of_one_host_do_not_hide_another() {
        // 100 spellings of one origin (letter case, trailing dot, explicit port), a request
        // for another host, then a 421 for the first: the spellings used to fill the 64
        // authorities kept per connection, the other host was not kept, and the reuse went
        // unseen.
        let host = "abcdefgh.example.test";
        let mut requests: Vec<Exchange> = (0..100u32)
            .map(|n| {
                let spelled: String = host
                    .chars()
                    .enumerate()
                    .map(|(i, ch)| match i < 8 && n >> i & 1 == 1 {
                        true => ch.to_ascii_uppercase(),
                        false => ch,
                    })
                    .collect();
                let spelled = match n % 3 {
                    0 => spelled,
                    1 => format!("{spelled}."),
                    _ => format!("{spelled}:443"),
                };
                get(&spelled, None, i64::from(n), 200)
            })
            .collect();
        requests.push(get("b.example.test", None, 1000, 200));
        requests.push(get(host, None, 1010, 421));
        let c = record(1, "10.0.0.1:1000", "10.0.0.9:443", Some(host), requests);
        let f = diagnose(&[c]);
        let f = f.iter().find(|f| f.status == Some(421)).unwrap();
        assert!(causes(f).contains(&"connection_reuse"), "{f:?}");
        assert_eq!(f.evidence.earlier_authorities, ["b.example.test"]);
    }

    #[test]
    fn certificate_names_and_origins_match_as_before() {
        let names: Vec<String> = ["*.example.test", "exact.test.", "*.com", "[::1]"]
            .map(String::from)
            .to_vec();
        let set = NameSet::new(&names);
        for (host, covered) in [
            ("a.example.test", true),
            ("A.Example.Test.:443", true),
            ("example.test", false),
            ("a.b.example.test", false),
            (".example.test", false),
            ("exact.test", true),
            ("x.com", false),
            ("[::1]:443", true),
        ] {
            assert_eq!(set.covers(host), covered, "{host}");
            assert_eq!(
                crate::analysis::authority::certificate_covers(&names, host),
                covered
            );
        }
        let origins = OriginSet::new(
            &[
                "https://a.example.test".into(),
                "https://b.example.test:8443".into(),
            ],
            443,
        );
        assert!(origins.contains(&Authority::parse("A.example.test:443")));
        assert!(!origins.contains(&Authority::parse("b.example.test")));
        assert!(origins.contains(&Authority::parse("b.example.test:8443")));
    }
}
