//! The diagnosis as connection records arrive: which records are in view when a finding is
//! made, so that only those a later finding may look up are kept.
//!
//! Contract: records are pushed in id order (first-packet order); [`Window::finish`]
//! returns the same findings, in the same order, as a diagnosis that saw them all at once,
//! and each record is handed back (`gone`) once no finding can look it up any more; or,
//! when the report does not keep them ([`Window::slimming`]), once diagnosed, the window
//! keeping only what other findings look up of it (`diagnose::Slim`). What lets a record
//! go:
//! - A connection without an HTTP 421 needs only itself: it is diagnosed as it arrives.
//! - A connection's own findings need only itself, but for a 421's upstream leg: a
//!   request a proxy sent while the 421's request waited, on a connection that may start
//!   up to the 421's answer. So a connection is diagnosed once the records arriving start
//!   after its 421s were answered (`diagnose::waits_until`), and until then keeps every
//!   record with a request at or after its first 421 (`diagnose::asks_from`).
//! - A 421's retry may come at any distance. Its search ([`RetrySearch`]) goes on apart
//!   from the record, over the requests sent in each new span of time: a record is kept
//!   while a request in it may still be in a span not searched yet.
//! - So a record goes once diagnosed and ended before the start of the records arriving:
//!   what is kept is about the connections open at that time, not the capture so far.
//!
//! Records arrive by first packet, so their start times only grow, but for a capture
//! whose clock steps back. A window [`SLACK`] wide absorbs the small steps of captures
//! merged from several interfaces; a record that starts earlier than that before the
//! newest is counted (`late`): a lookup across the step may miss.
//!
//! The window is looked at in steps, each once as many records arrived as it held, so the
//! cost of sorting it for lookups is shared by that many records.

use super::diagnose::{self, end_search, Finding, RetrySearch, Slim, MAX_LISTED};
use super::ConnectionRecord;
use crate::flow::ConnId;
use crate::Timestamp;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;

/// How far a record's start may be before the newest record's without being late.
pub const SLACK: i64 = Timestamp::NANOS_PER_SEC;

/// Records arriving between two looks at the window, at the least.
const MIN_STEP: usize = 1024;

/// The diagnosis of records pushed in id order; `R` is the record or a reference to it.
pub(crate) struct Window<R> {
    held: Vec<Held<R>>,
    /// Records pushed since the window was last looked at, and how many make the next look.
    arrived: usize,
    next_step: usize,
    min_step: usize,
    /// The latest start of a record pushed.
    newest: Option<Timestamp>,
    late: u64,
    findings: Vec<Finding>,
    /// 421s whose retry is still looked for: the finding's number, the search, and the
    /// time from which requests were not searched yet.
    searches: Vec<(usize, RetrySearch, Timestamp)>,
    /// The first `MAX_LISTED + 1` connections to each server.
    by_server: HashMap<SocketAddr, Vec<ConnId>>,
    /// Whether a record, once diagnosed, goes (`gone`) at once and only its [`Slim`]
    /// form stays: when records are not kept for the report.
    slimming: bool,
    /// The texts of slimmed records, kept once.
    texts: crate::intern::Interner<str, crate::intern::ArcStr>,
}

/// A record in the window: whole until diagnosed, then whole or, when records are not
/// kept for the report, slimmed.
enum Held<R> {
    Waiting(R),
    Diagnosed(R),
    Slim(Box<Slim>),
}

impl<R: Deref<Target = ConnectionRecord>> Held<R> {
    fn view(&self) -> diagnose::Held<'_> {
        match self {
            Held::Waiting(r) | Held::Diagnosed(r) => diagnose::Held::Record(r),
            Held::Slim(s) => diagnose::Held::Slim(s),
        }
    }

    fn last_seen(&self) -> Timestamp {
        match self {
            Held::Waiting(r) | Held::Diagnosed(r) => r.last_seen,
            Held::Slim(s) => s.last_seen,
        }
    }
}

impl<R: Deref<Target = ConnectionRecord>> Window<R> {
    pub fn new() -> Self {
        Self::with_step(MIN_STEP)
    }

    /// A window looked at after every `min_step` records at least (tests compare steps of
    /// one record with a single look at the end).
    pub fn with_step(min_step: usize) -> Self {
        let min_step = min_step.max(1);
        Window {
            held: Vec::new(),
            arrived: 0,
            next_step: min_step,
            min_step,
            newest: None,
            late: 0,
            findings: Vec::new(),
            searches: Vec::new(),
            by_server: HashMap::new(),
            slimming: false,
            texts: Default::default(),
        }
    }

    /// Records are not kept for the report: each goes (`gone`) once diagnosed, and the
    /// window keeps only what other records' findings look up of it ([`Slim`]).
    pub fn slimming(mut self) -> Self {
        self.slimming = true;
        self
    }

    /// The next record in id order; records no finding can look up any more go to `gone`.
    pub fn push(&mut self, record: R, gone: &mut dyn FnMut(R)) {
        let ids = self.by_server.entry(record.server).or_default();
        if ids.len() <= MAX_LISTED {
            ids.push(record.id);
        }
        let start = record.first_seen;
        if self
            .newest
            .is_some_and(|n| start.0 < n.0.saturating_sub(SLACK))
        {
            self.late += 1;
        }
        self.newest = self.newest.max(Some(start));
        // Without an HTTP 421, a connection's findings are its own: made now, and the
        // record slimmed at once.
        let held = if diagnose::asks_from(&record).is_none() {
            let findings = &mut self.findings;
            diagnose::findings_alone(&record, &mut |f| findings.push(f));
            self.diagnosed(record, gone)
        } else {
            Held::Waiting(record)
        };
        self.held.push(held);
        self.arrived += 1;
        if self.arrived >= self.next_step {
            let frontier = self.newest.map(|n| Timestamp(n.0.saturating_sub(SLACK)));
            self.step(frontier, gone);
        }
    }

    /// Every finding, in report order, and the number of records that came later than
    /// [`SLACK`] allows. The records still held go to `gone`.
    pub fn finish(mut self, gone: &mut dyn FnMut(R)) -> (Vec<Finding>, u64) {
        self.step(None, gone);
        let mut findings = self.findings;
        for f in &mut findings {
            let same_server = f.at.and_then(|at| self.by_server.get(&at.server));
            let same_server = same_server.map_or(&[][..], Vec::as_slice);
            f.evidence.same_server_connections = diagnose::others(same_server, f.connection);
        }
        diagnose::order(&mut findings);
        diagnose::link_downstream(&mut findings);
        (findings, self.late)
    }

    /// Looks at the window: every record pushed before records began at `frontier` is
    /// known (`None`: every record is). Diagnoses the records whose findings no record yet
    /// to come can change, carries the retry searches on up to `frontier`, and lets go of
    /// what no finding can look up any more.
    fn step(&mut self, frontier: Option<Timestamp>, gone: &mut dyn FnMut(R)) {
        let Window {
            held,
            findings,
            searches,
            ..
        } = self;
        let views = diagnose::views(held.iter().map(Held::view));
        let mut first = 0;
        let mut diagnosed = Vec::new();
        for (w, h) in held.iter().enumerate() {
            if let Held::Waiting(c) = h {
                let ready = frontier.is_none_or(|f| diagnose::waits_until(c).is_none_or(|t| t < f));
                if ready {
                    diagnose::findings_of(&views, first, c, &mut |f, search| {
                        if let Some(s) = search {
                            let from = s.after();
                            searches.push((findings.len(), s, from));
                        }
                        findings.push(f);
                    });
                    diagnosed.push(w);
                }
            }
            first += h.view().views();
        }
        searches.retain_mut(|(n, search, from)| {
            let found = search.find(&views, *from, frontier);
            match (found, frontier) {
                (None, Some(f)) => {
                    *from = (*from).max(f);
                    true
                }
                (found, _) => {
                    if let Some(f) = findings.get_mut(*n) {
                        end_search(f, found);
                    }
                    false
                }
            }
        });
        drop(views);
        let mut diagnosed = diagnosed.into_iter().peekable();
        let held: Vec<Held<R>> = std::mem::take(held)
            .into_iter()
            .enumerate()
            .map(|(w, h)| match h {
                Held::Waiting(r) if diagnosed.next_if_eq(&w).is_some() => self.diagnosed(r, gone),
                h => h,
            })
            .collect();
        // Requests from `line` on may still be looked up: by a record to come (it starts
        // after `frontier`), by a record not diagnosed yet, or by a search.
        let waiting = held.iter().filter_map(|h| match h {
            Held::Waiting(r) => diagnose::asks_from(r),
            _ => None,
        });
        let searching = self.searches.iter().map(|(_, _, from)| *from);
        let line = frontier.map(|f| waiting.chain(searching).fold(f, Timestamp::min));
        let mut kept = Vec::with_capacity(held.len());
        for h in held {
            let done = !matches!(h, Held::Waiting(_)) && line.is_none_or(|l| h.last_seen() < l);
            match h {
                Held::Diagnosed(r) if done => gone(r),
                Held::Slim(_) if done => {}
                h => kept.push(h),
            }
        }
        self.held = kept;
        self.arrived = 0;
        self.next_step = self.min_step.max(self.held.len());
    }

    /// A record just diagnosed, as the window keeps it: when records are not kept for the
    /// report, slimmed, the record itself going now.
    fn diagnosed(&mut self, r: R, gone: &mut dyn FnMut(R)) -> Held<R> {
        if !self.slimming {
            return Held::Diagnosed(r);
        }
        let slim = Held::Slim(Box::new(Slim::of(&r, &mut self.texts)));
        gone(r);
        slim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::TunnelRecord;
    use crate::proto::http::Exchange;
    use crate::proto::tls::session::TlsInfo;
    use crate::proto::AppProtocol;
    use proptest::prelude::*;
    use std::num::NonZeroU32;

    /// Findings as the report writes them.
    fn json(findings: &[Finding]) -> String {
        serde_json::to_string_pretty(findings).unwrap()
    }

    /// The findings of `records` through a window looked at every `step` records, and how
    /// many records it let go before the end.
    fn through(records: &[Box<ConnectionRecord>], step: usize) -> (Vec<Finding>, usize, u64) {
        let mut window = Window::with_step(step);
        let mut early = 0;
        for r in records {
            window.push(&**r, &mut |_| early += 1);
        }
        let (findings, late) = window.finish(&mut |_| {});
        (findings, early, late)
    }

    /// The findings of `records` through a window that slims what it lets go of, looked
    /// at every `step` records.
    fn slimming(records: &[Box<ConnectionRecord>], step: usize) -> Vec<Finding> {
        let mut window = Window::with_step(step).slimming();
        for r in records {
            window.push(r.clone(), &mut drop);
        }
        window.finish(&mut drop).0
    }

    /// Every sample's findings are the same whether the window is looked at after every
    /// record or once at the end.
    #[test]
    fn samples_find_the_same_in_any_step() {
        let mut findings = 0;
        for file in crate::samples::captures() {
            let report = crate::samples::report(&file);
            let whole = json(&report.findings);
            for step in [1, 2, 5] {
                let (f, _, late) = through(&report.connections, step);
                assert_eq!(json(&f), whole, "{} in steps of {step}", file.display());
                assert_eq!(late, 0, "{}", file.display());
                let f = slimming(&report.connections, step);
                assert_eq!(
                    json(&f),
                    whole,
                    "{} slimmed, steps of {step}",
                    file.display()
                );
            }
            findings += report.findings.len();
        }
        // The corpus holds seven: the property test below covers the rest.
        assert!(findings >= 7, "{findings}");
    }

    fn exchange(rng: &Req) -> Exchange {
        let mut e = Exchange::default();
        e.stream_id = NonZeroU32::new(rng.stream);
        e.request_time = rng.sent.then_some(Timestamp(rng.at));
        e.response_time = rng.answered.then_some(Timestamp(rng.at + rng.wait));
        e.method = Some(["GET", "POST"][rng.method].into());
        e.authority = rng
            .host
            .map(|h| ["a.test", "b.test", "A.test:443", "c.test"][h].into());
        e.host = rng.host_header.then(|| "b.test".into());
        e.path = Some(["/", "/x"][rng.path].into());
        e.status = Some([200, 421, 421, 404][rng.status]);
        e
    }

    #[derive(Clone, Debug)]
    struct Req {
        at: i64,
        wait: i64,
        sent: bool,
        answered: bool,
        stream: u32,
        method: usize,
        host: Option<usize>,
        host_header: bool,
        path: usize,
        status: usize,
    }

    #[derive(Clone, Debug)]
    struct Conn {
        start: i64,
        client: u8,
        server: u8,
        port: u16,
        sni: Option<usize>,
        requests: Vec<Req>,
        tunnel: Option<Vec<Req>>,
    }

    fn req() -> impl Strategy<Value = Req> {
        (
            (0i64..40, 0i64..12, any::<bool>(), any::<bool>(), 0u32..4),
            (0usize..2, proptest::option::of(0usize..4), any::<bool>()),
            (0usize..2, 0usize..4),
        )
            .prop_map(
                |(
                    (at, wait, sent, answered, stream),
                    (method, host, host_header),
                    (path, status),
                )| {
                    Req {
                        at,
                        wait,
                        sent: sent || !answered,
                        answered,
                        stream,
                        method,
                        host,
                        host_header,
                        path,
                        status,
                    }
                },
            )
    }

    fn conn() -> impl Strategy<Value = Conn> {
        (
            (
                0i64..30,
                0u8..4,
                0u8..4,
                0u16..2,
                proptest::option::of(0usize..3),
            ),
            proptest::collection::vec(req(), 0..5),
            proptest::option::weighted(0.1, proptest::collection::vec(req(), 0..3)),
        )
            .prop_map(
                |((start, client, server, port, sni), requests, tunnel)| Conn {
                    start,
                    client,
                    server,
                    port,
                    sni,
                    requests,
                    tunnel,
                },
            )
    }

    /// Records in id order from `conns`: started in order, each request some seconds after
    /// its connection's start. Addresses 10.0.0.0-3 are clients and servers both, so one
    /// connection's server is another's client (a proxy).
    fn records(mut conns: Vec<Conn>) -> crate::analysis::Records {
        conns.sort_by_key(|c| c.start);
        let s = Timestamp::NANOS_PER_SEC;
        let requests = |start: i64, reqs: &[Req]| -> Vec<Exchange> {
            let mut v: Vec<Exchange> = reqs
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.at = (start + r.at) * s;
                    r.wait *= s / 4;
                    exchange(&r)
                })
                .collect();
            v.sort_by_key(|e| e.request_time.or(e.response_time));
            v
        };
        conns
            .iter()
            .enumerate()
            .map(|(n, c)| {
                let client = format!("10.0.0.{}:{}", c.client, 40000 + n);
                let server = format!("10.0.0.{}:{}", c.server, [443, 8443][usize::from(c.port)]);
                let mut r = ConnectionRecord::bare(
                    ConnId(n as u64 + 1),
                    client.parse().unwrap(),
                    server.parse().unwrap(),
                );
                r.first_seen = Timestamp(c.start * s);
                r.requests = requests(c.start, &c.requests);
                r.tunnel = c.tunnel.as_ref().map(|t| {
                    Box::new(TunnelRecord {
                        protocol: AppProtocol::Http1,
                        tls: None,
                        requests: requests(c.start, t),
                        http2: None,
                        tunnel: None,
                    })
                });
                let mut tls = TlsInfo::default();
                tls.sni = c.sni.map(|i| ["a.test", "b.test", "c.test"][i].into());
                tls.server_names = ["a.test".to_string(), "*.test".to_string()].into();
                r.tls = Some(Box::new(tls));
                r.protocol = AppProtocol::Http2;
                let times = r
                    .requests
                    .iter()
                    .chain(r.tunnel.iter().flat_map(|t| &t.requests));
                r.last_seen = times
                    .flat_map(|e| [e.request_time, e.response_time])
                    .flatten()
                    .fold(r.first_seen, Timestamp::max);
                Box::new(r)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any traffic: the same findings in any step as at once.
        #[test]
        fn any_step_finds_what_the_whole_finds(conns in proptest::collection::vec(conn(), 1..40)) {
            let records = records(conns);
            let (whole, _, _) = through(&records, usize::MAX);
            for step in [1, 2, 7] {
                let (f, _, late) = through(&records, step);
                prop_assert_eq!(json(&f), json(&whole), "steps of {}", step);
                prop_assert_eq!(late, 0);
                let f = slimming(&records, step);
                prop_assert_eq!(json(&f), json(&whole), "slimmed, steps of {}", step);
            }
        }
    }

    /// Connections one after another: the window lets each go once the next ones start
    /// later than it ended, so what it holds does not grow with the capture.
    #[test]
    fn short_connections_do_not_accumulate() {
        let conns: Vec<Conn> = (0..3000)
            .map(|n| Conn {
                start: n * 2,
                client: (n % 4) as u8,
                server: ((n + 1) % 4) as u8,
                port: 0,
                sni: Some(0),
                requests: vec![Req {
                    at: 0,
                    wait: 1,
                    sent: true,
                    answered: true,
                    stream: 1,
                    method: 0,
                    host: Some((n % 3) as usize),
                    host_header: false,
                    path: 0,
                    status: (n % 4) as usize,
                }],
                tunnel: None,
            })
            .collect();
        let records = records(conns);
        let mut window = Window::with_step(16);
        let mut gone = 0;
        let mut most = 0;
        for (n, r) in records.iter().enumerate() {
            window.push(&**r, &mut |_| gone += 1);
            most = most.max(n + 1 - gone);
        }
        assert!(most <= 64, "held {most} at most");
        let (f, _) = window.finish(&mut |_| {});
        assert_eq!(json(&f), json(&through(&records, usize::MAX).0));
        // Retries were found across steps: every 421 but the last was retried.
        let retried = f.iter().filter(|f| f.retry.is_some()).count();
        assert!(retried > 1000, "{retried}");
    }

    /// A clock that steps back is counted: the records after the step are late.
    #[test]
    fn a_clock_stepping_back_is_counted() {
        let s = Timestamp::NANOS_PER_SEC;
        let mut records: Vec<_> = (0..4)
            .map(|n| {
                let mut r = ConnectionRecord::bare(
                    ConnId(n + 1),
                    "10.0.0.1:1000".parse().unwrap(),
                    "10.0.0.2:443".parse().unwrap(),
                );
                r.first_seen = Timestamp([10, 11, 5, 10][n as usize] * s);
                r.last_seen = r.first_seen;
                Box::new(r)
            })
            .collect();
        assert_eq!(through(&records, 1).2, 1);
        records.truncate(2);
        assert_eq!(through(&records, 1).2, 0);
    }
}
