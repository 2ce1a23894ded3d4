//! Encapsulated traffic (docs/encapsulation.md): connections inside VXLAN, GENEVE, GRE,
//! ERSPAN, IP-in-IP, MPLS and PPPoE are found, reassembled and analysed exactly as if they
//! had been captured bare, and the tunnel context keeps tenants apart.
//!
//! Real captures: `samples/vxlan*.pcap` were taken on the underlay of a Linux VXLAN overlay,
//! each with a twin taken at the same time on the overlay (`-bare`): same packets, no tunnel.
//! The other encapsulations have no kernel driver where the samples were made, so the packets
//! of the bare twins are wrapped here in those headers (`tests/common/encap.rs`); tshark
//! checks the wrapped files (SNIs and every stream's bytes), and the bare capture is the
//! truth for the inner view (connections, SNIs, requests, byte counts).

mod common;

use common::encap::*;
use common::tshark;
use common::*;
use misdirect::analysis::Report;
use misdirect::anomaly::Anomaly;
use misdirect::capture::{Capture, FileSource};
use misdirect::pipeline::RunStats;
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::Limits;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn analyze_bytes(bytes: Vec<u8>, keys: Option<&Path>, limits: &Limits) -> Report {
    let src = FileSource::from_reader(
        "test".to_string(),
        std::io::Cursor::new(bytes),
        limits.max_capture_block,
    )
    .unwrap();
    let cap = Capture::from_sources(vec![src]).unwrap();
    let mut keylog = KeyLog::default();
    if let Some(k) = keys {
        keylog.add(&std::fs::read(k).unwrap());
    }
    misdirect::pipeline::analyze(cap, limits, keylog, &mut |_| {})
}

fn analyze_sample(name: &str) -> Report {
    let file = samples().join(name);
    let keys = file.with_extension("keys");
    analyze_bytes(
        std::fs::read(&file).unwrap(),
        keys.exists().then_some(keys.as_path()),
        &Limits::default(),
    )
}

/// (stream, method, authority, path, status) of a request.
type Request = (Option<u32>, String, String, String, Option<u16>);

/// Wraps one captured frame (with its IP packet, if it is one) sent by the client or not,
/// the packet's index: an Ethernet frame, or `None` to leave the packet out.
type WrapFn = dyn Fn(&[u8], Option<&[u8]>, bool, u32) -> Option<Vec<u8>>;
type Wrap = Box<WrapFn>;

/// A connection as seen from inside: everything but where and how it was captured.
#[derive(Debug, PartialEq)]
struct InnerView {
    client: String,
    server: String,
    orientation: String,
    close: String,
    protocol: String,
    sni: Option<String>,
    decryption: Option<String>,
    requests: Vec<Request>,
    /// (packets, payload bytes, stream bytes, gaps) per direction.
    c2s: (u64, u64, u64, u64),
    s2c: (u64, u64, u64, u64),
}

fn inner_view(r: &Report) -> Vec<InnerView> {
    let s = |v: &Option<misdirect::intern::ArcStr>| v.as_deref().unwrap_or("?").to_string();
    r.connections
        .iter()
        .map(|c| InnerView {
            client: c.client.to_string(),
            server: c.server.to_string(),
            orientation: format!("{:?}", c.orientation),
            close: format!("{:?}", c.close),
            protocol: format!("{:?}", c.protocol),
            sni: c
                .tls
                .as_ref()
                .and_then(|t| Some(t.sni.as_deref()?.to_string())),
            decryption: c.tls.as_ref().map(|t| t.decryption.to_string()),
            requests: c
                .requests
                .iter()
                .map(|e| {
                    (
                        e.stream_id.map(u32::from),
                        s(&e.method),
                        s(&e.authority),
                        s(&e.path),
                        e.status,
                    )
                })
                .collect(),
            c2s: (
                c.client_to_server.packets,
                c.client_to_server.payload_bytes,
                c.client_to_server.stream_bytes,
                c.client_to_server.gaps,
            ),
            s2c: (
                c.server_to_client.packets,
                c.server_to_client.payload_bytes,
                c.server_to_client.stream_bytes,
                c.server_to_client.gaps,
            ),
        })
        .collect()
}

/// The layer kinds of every connection, outermost first.
fn kinds(r: &Report) -> Vec<Vec<&'static str>> {
    r.connections
        .iter()
        .map(|c| c.encapsulation.iter().map(|l| l.kind()).collect())
        .collect()
}

fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

// ---------------------------------------------------------------- real VXLAN captures

#[test]
fn real_vxlan_captures_yield_what_their_bare_twins_do() {
    for (name, vni, outer, http_conns) in [
        ("vxlan-http1", 42, ("192.0.2.1", "192.0.2.2"), 2),
        ("vxlan6-h2", 4242, ("2001:db8:42::1", "2001:db8:42::2"), 1),
        ("vxlan-outer-fragments", 77, ("192.0.2.1", "192.0.2.2"), 2),
    ] {
        let enc = analyze_sample(&format!("{name}.pcap"));
        let bare = analyze_sample(&format!("{name}-bare.pcap"));
        assert_eq!(inner_view(&enc), inner_view(&bare), "{name}");
        assert_eq!(
            enc.connections
                .iter()
                .filter(|c| !c.requests.is_empty())
                .count(),
            http_conns,
            "{name}"
        );
        assert!(enc.anomalies.is_empty(), "{name}: {:?}", enc.anomalies);
        for c in &bare.connections {
            assert!(c.encapsulation.is_empty(), "{name}-bare");
        }
        for c in &enc.connections {
            assert_eq!(
                json(&c.encapsulation),
                serde_json::json!([{"kind": "vxlan", "vni": vni,
                    "outer_src": outer.0, "outer_dst": outer.1}]),
                "{name}: the first packet (the SYN) goes from the client's VTEP"
            );
            if let Some(t) = &c.tls {
                assert!(t.decrypted, "{name}: {}", t.decryption);
                assert_eq!(t.sni.as_deref(), Some("a.example.test"));
            }
        }
        let p = &enc.summary.packets;
        assert_eq!(p.tcp, bare.summary.packets.tcp, "{name}");
        assert!(p.encapsulated > p.tcp, "{name}: {p:?}");
        assert_eq!(bare.summary.packets.encapsulated, 0);
        if name == "vxlan-outer-fragments" {
            // The underlay split full-sized VXLAN datagrams in two.
            assert!(p.ip_datagrams_reassembled >= 10, "{p:?}");
            assert_eq!(p.ip_fragments, 2 * p.ip_datagrams_reassembled);
        }
    }
}

#[test]
fn real_vxlan_captures_agree_with_tshark_on_snis() {
    if !tshark::available() {
        return;
    }
    for name in ["vxlan-http1", "vxlan6-h2", "vxlan-outer-fragments"] {
        let file = samples().join(format!("{name}.pcap"));
        let ours = analyze_sample(&format!("{name}.pcap"));
        assert_eq!(tshark_snis(&file, &[]), our_snis(&ours), "{name}");
    }
}

/// SNI per TCP stream, as tshark reads the ClientHellos.
fn tshark_snis(file: &Path, extra: &[&str]) -> BTreeMap<usize, String> {
    let f = file.display().to_string();
    let mut args = vec!["-r", &f];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-Y",
        "tls.handshake.type == 1",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "tls.handshake.extensions_server_name",
    ]);
    tshark::run(&args)
        .lines()
        .filter_map(|l| {
            let (stream, sni) = l.split_once('\t')?;
            Some((stream.parse().ok()?, sni.to_string()))
        })
        .collect()
}

fn our_snis(r: &Report) -> BTreeMap<usize, String> {
    r.connections
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c.tls.as_ref()?.sni.as_deref()?.to_string())))
        .collect()
}

// ---------------------------------------------------------------- real traffic, re-wrapped

/// A bare real capture: its packets, the client's address, its key log.
struct Bare {
    name: &'static str,
    packets: Vec<Packet>,
    client: IpAddr,
    keys: PathBuf,
}

impl Bare {
    fn load(name: &'static str) -> Bare {
        let file = samples().join(format!("{name}.pcap"));
        let packets = read_packets(&file);
        // The client is the source of the first SYN.
        let client = packets
            .iter()
            .filter_map(|p| ip_of_frame(&p.data))
            .find_map(|ip| {
                let (h, rest) = etherparse::IpHeaders::from_slice(ip).ok()?;
                let tcp = etherparse::TcpHeader::from_slice(rest.payload).ok()?.0;
                (tcp.syn && !tcp.ack).then(|| src_of(&h))
            })
            .unwrap();
        Bare {
            name,
            packets,
            client,
            keys: file.with_extension("keys"),
        }
    }

    fn report(&self, limits: &Limits) -> Report {
        analyze_bytes(
            std::fs::read(samples().join(format!("{}.pcap", self.name))).unwrap(),
            Some(&self.keys),
            limits,
        )
    }

    /// Every packet wrapped by `wrap(frame, its IP packet, from the client, index)` into an
    /// Ethernet frame; `None` leaves the packet out (a non-IP frame in an L3 tunnel).
    fn wrapped(&self, wrap: &WrapFn) -> Vec<u8> {
        let frames: Vec<Frame> = self
            .packets
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let ip = ip_of_frame(&p.data);
                let from_client = ip.is_some_and(|ip| {
                    etherparse::IpHeaders::from_slice(ip)
                        .is_ok_and(|(h, _)| src_of(&h) == self.client)
                });
                let data = wrap(&p.data, ip, from_client, i as u32)?;
                Some(Frame {
                    ts: p.ts,
                    orig_len: data.len() as u32,
                    data,
                })
            })
            .collect();
        pcap(LINKTYPE_ETHERNET, &frames)
    }
}

fn src_of(h: &etherparse::IpHeaders) -> IpAddr {
    match h {
        etherparse::IpHeaders::Ipv4(v4, _) => IpAddr::from(v4.source),
        etherparse::IpHeaders::Ipv6(v6, _) => IpAddr::from(v6.source),
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Tunnel endpoints: A on the client's side, B on the server's; the two directions swap them.
fn ends(from_client: bool, a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if from_client {
        (a, b)
    } else {
        (b, a)
    }
}

/// One way of wrapping a bare capture: its name, the bare capture, the wrapping, the layer
/// kinds expected on each connection, decoder limits, and what tshark needs to decode it.
struct Case {
    name: &'static str,
    base: &'static str,
    wrap: Wrap,
    kinds: Vec<&'static str>,
    limits: Limits,
    tshark: Vec<&'static str>,
}

fn case(name: &'static str, base: &'static str, kinds: &[&'static str], wrap: Wrap) -> Case {
    Case {
        name,
        base,
        wrap,
        kinds: kinds.to_vec(),
        limits: Limits::default(),
        tshark: Vec::new(),
    }
}

const V4: &str = "vxlan-http1-bare";
const V6: &str = "vxlan6-h2-bare";

fn cases() -> Vec<Case> {
    let (a4, b4) = (addr("198.51.100.1"), addr("198.51.100.2"));
    let (a6, b6) = (addr("2001:db8:ff::1"), addr("2001:db8:ff::2"));
    // An ERSPAN mirror session: every copy goes from the switch to the collector.
    let (switch, collector) = (addr("198.51.100.9"), addr("198.51.100.10"));
    let l3 = |f: fn(&[u8], bool, u32) -> Vec<u8>| -> Wrap {
        Box::new(move |_, ip, from_client, i| ip.map(|ip| f(ip, from_client, i)))
    };
    let mut v = vec![
        case(
            "geneve-ethernet-with-option",
            V4,
            &["geneve"],
            Box::new(move |frame, _, c, i| {
                let (s, d) = ends(c, a4, b4);
                let sport = 50000 + (i % 7) as u16; // a flow hash, varying: not in the key
                Some(eth_ip(&udp(
                    s,
                    d,
                    sport,
                    6081,
                    &geneve(5, ETHERTYPE_TEB, 3, frame),
                )))
            }),
        ),
        case(
            "geneve-ip",
            V6,
            &["geneve"],
            Box::new(move |_, ip, c, _| {
                let ip = ip?;
                let (s, d) = ends(c, a6, b6);
                Some(eth_ip(&udp(
                    s,
                    d,
                    50001,
                    6081,
                    &geneve(6, ethertype_of(ip), 0, ip),
                )))
            }),
        ),
        case(
            "gre-checksum-key-sequence",
            V4,
            &["gre"],
            Box::new(move |_, ip, c, i| {
                let ip = ip?;
                let (s, d) = ends(c, a4, b4);
                let opts = GreOpts {
                    checksum: true,
                    key: Some(1001),
                    seq: Some(i),
                };
                Some(eth_ip(&common::encap::ip(
                    s,
                    d,
                    47,
                    &gre(opts, ethertype_of(ip), ip),
                )))
            }),
        ),
        case(
            "gretap-key",
            V4,
            &["gre"],
            Box::new(move |frame, _, c, _| {
                let (s, d) = ends(c, a4, b4);
                let opts = GreOpts {
                    key: Some(2002),
                    ..GreOpts::default()
                };
                Some(eth_ip(&common::encap::ip(
                    s,
                    d,
                    47,
                    &gre(opts, ETHERTYPE_TEB, frame),
                )))
            }),
        ),
        case(
            "ip6gre-ipv6",
            V6,
            &["gre"],
            Box::new(move |_, ip, c, _| {
                let ip = ip?;
                let (s, d) = ends(c, a6, b6);
                Some(eth_ip(&common::encap::ip(
                    s,
                    d,
                    47,
                    &gre(GreOpts::default(), ETHERTYPE_IPV6, ip),
                )))
            }),
        ),
        case(
            "erspan-type-1",
            V4,
            &["erspan"],
            Box::new(move |frame, _, _, _| {
                Some(eth_ip(&common::encap::ip(
                    switch,
                    collector,
                    47,
                    &erspan1(frame),
                )))
            }),
        ),
        case(
            "erspan-type-2",
            V4,
            &["erspan"],
            Box::new(move |frame, _, _, i| {
                Some(eth_ip(&common::encap::ip(
                    switch,
                    collector,
                    47,
                    &erspan2(100, i, frame),
                )))
            }),
        ),
        case(
            "erspan-type-3",
            V6,
            &["erspan"],
            Box::new(move |frame, _, _, i| {
                Some(eth_ip(&common::encap::ip(
                    switch,
                    collector,
                    47,
                    &erspan3(101, i, 0, false, frame),
                )))
            }),
        ),
        case(
            "erspan-type-3-platform-subheader",
            V4,
            &["erspan"],
            Box::new(move |frame, _, _, i| {
                Some(eth_ip(&common::encap::ip(
                    switch,
                    collector,
                    47,
                    &erspan3(102, i, 0, true, frame),
                )))
            }),
        ),
        case(
            "ipip",
            V4,
            &["ip_in_ip"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a4, b4);
                Some(eth_ip(&common::encap::ip(s, d, 4, ip?)))
            }),
        ),
        case(
            "6in4",
            V6,
            &["ip_in_ip"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a4, b4);
                Some(eth_ip(&common::encap::ip(s, d, 41, ip?)))
            }),
        ),
        case(
            "4in6",
            V4,
            &["ip_in_ip"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a6, b6);
                Some(eth_ip(&common::encap::ip(s, d, 4, ip?)))
            }),
        ),
        case(
            "6in6",
            V6,
            &["ip_in_ip"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a6, b6);
                Some(eth_ip(&common::encap::ip(s, d, 41, ip?)))
            }),
        ),
        // Labels are chosen per direction by the next router: the two directions differ.
        case(
            "mpls-two-labels",
            V4,
            &["mpls"],
            l3(|ip, c, _| {
                let labels: &[u32] = if c { &[16, 1000] } else { &[17, 2000] };
                eth(ETHERTYPE_MPLS, &mpls(labels, ip))
            }),
        ),
        case(
            "mpls-ipv6",
            V6,
            &["mpls"],
            l3(|ip, _, _| eth(ETHERTYPE_MPLS, &mpls(&[18], ip))),
        ),
        case(
            "mpls-pseudowire-control-word",
            V4,
            &["mpls"],
            Box::new(|frame, _, _, i| {
                Some(eth(
                    ETHERTYPE_MPLS,
                    &mpls(&[300, 301], &pw_control_word(i as u16, frame)),
                ))
            }),
        ),
        case(
            "mpls-in-gre",
            V4,
            &["gre", "mpls"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a4, b4);
                let m = mpls(&[400], ip?);
                Some(eth_ip(&common::encap::ip(
                    s,
                    d,
                    47,
                    &gre(GreOpts::default(), ETHERTYPE_MPLS, &m),
                )))
            }),
        ),
        case(
            "pppoe-ipv4",
            V4,
            &["pppoe"],
            l3(|ip, _, _| eth(ETHERTYPE_PPPOE_SESSION, &pppoe(0x1234, ip))),
        ),
        case(
            "pppoe-ipv6",
            V6,
            &["pppoe"],
            l3(|ip, _, _| eth(ETHERTYPE_PPPOE_SESSION, &pppoe(0x0042, ip))),
        ),
        // At the depth limit (4): MPLS, GRE (Ethernet), VXLAN, PPPoE.
        case(
            "four-deep",
            V4,
            &["mpls", "gre", "vxlan", "pppoe"],
            Box::new(move |_, ip, c, _| {
                let (s, d) = ends(c, a4, b4);
                let (s2, d2) = ends(c, addr("10.99.0.1"), addr("10.99.0.2"));
                let ppp = eth(ETHERTYPE_PPPOE_SESSION, &pppoe(7, ip?));
                let vx = eth_ip(&udp(s2, d2, 40000, 4789, &vxlan(7, &ppp)));
                let g = common::encap::ip(
                    s,
                    d,
                    47,
                    &gre(
                        GreOpts {
                            key: Some(9),
                            ..GreOpts::default()
                        },
                        ETHERTYPE_TEB,
                        &vx,
                    ),
                );
                Some(eth(ETHERTYPE_MPLS, &mpls(&[500], &g)))
            }),
        ),
    ];
    // VXLAN on Linux's default port, which only `vxlan_ports` (--vxlan-port) makes VXLAN.
    let mut custom = case(
        "vxlan-port-8472",
        V4,
        &["vxlan"],
        Box::new(move |frame, _, c, _| {
            let (s, d) = ends(c, a4, b4);
            Some(eth_ip(&udp(s, d, 33333, 8472, &vxlan(8, frame))))
        }),
    );
    custom.limits.vxlan_ports = vec![8472];
    custom.tshark = vec!["-d", "udp.port==8472,vxlan"];
    v.push(custom);
    v
}

/// Wrapped cases where tshark 4.0 does not decode the result by itself, and why.
const TSHARK_CANNOT: &[(&str, &str)] = &[];

#[test]
fn real_traffic_in_every_encapsulation_yields_what_it_did_bare() {
    let mut bares: BTreeMap<&str, (Bare, Report)> = BTreeMap::new();
    for name in [V4, V6] {
        let b = Bare::load(name);
        let r = b.report(&Limits::default());
        bares.insert(name, (b, r));
    }
    let with_tshark = tshark::available();
    let dir = std::env::temp_dir().join(format!("misdirect-encap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for c in cases() {
        let (bare, truth) = &bares[c.base];
        let bytes = bare.wrapped(&*c.wrap);
        let ours = analyze_bytes(bytes.clone(), Some(&bare.keys), &c.limits);
        assert!(
            ours.anomalies.is_empty(),
            "{}: {:?}",
            c.name,
            ours.anomalies
        );
        assert_eq!(inner_view(&ours), inner_view(truth), "{}", c.name);
        for k in kinds(&ours) {
            assert_eq!(k, c.kinds, "{}", c.name);
        }
        assert_eq!(
            ours.summary.packets.tcp, truth.summary.packets.tcp,
            "{}",
            c.name
        );
        // Without the configured port, VXLAN on 8472 is plain UDP.
        if !c.limits.vxlan_ports.is_empty() {
            let plain = analyze_bytes(bytes.clone(), None, &Limits::default());
            assert!(plain.connections.is_empty(), "{}", c.name);
            assert_eq!(plain.summary.packets.udp, plain.summary.packets.packets);
        }
        if !with_tshark || TSHARK_CANNOT.iter().any(|(n, _)| *n == c.name) {
            continue;
        }
        let path = dir.join(format!("{}.pcap", c.name));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            tshark_snis(&path, &c.tshark),
            our_snis(&ours),
            "{}: SNIs (tshark vs ours)",
            c.name
        );
        // Every stream's bytes, as tshark follows them, against our reassembly.
        let (sink, _) = run_files(vec![bytes], &c.limits);
        let f = path.display().to_string();
        let mut args = vec!["-r", f.as_str()];
        args.extend_from_slice(&c.tshark);
        args.extend_from_slice(&["-T", "fields", "-e", "tcp.stream", "-Y", "tcp"]);
        let streams = tshark::run(&args)
            .lines()
            .filter_map(|l| l.trim().parse::<usize>().ok())
            .max()
            .map_or(0, |m| m + 1);
        assert_eq!(streams, sink.conns.len(), "{}: streams", c.name);
        let theirs = tshark::follow(&path, "tcp", &c.tshark, streams);
        for (s, t) in sink.conns.values().zip(&theirs) {
            let (client, server) = (s.client.unwrap().to_string(), s.server.unwrap().to_string());
            let (c2s, s2c) = t.by_direction(&client, &server, c.name);
            assert!(
                s.c2s == c2s && s.s2c == s2c,
                "{}: {client} bytes differ from tshark's",
                c.name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- the tunnel context

/// A synthetic HTTP-ish exchange between the same two inner endpoints, `tag` in its bytes.
fn conversation(tag: u8) -> Conversation {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 1000, 5000);
    c.handshake();
    c.client_sends(&[tag; 300], 1000);
    c.ack_from_server();
    c.server_sends(&[tag ^ 0xff; 700], 1000);
    c.ack_from_client();
    c.close();
    c
}

fn inner_is_from(frame: &[u8], src: &str) -> bool {
    let ip = ip_of_frame(frame).unwrap();
    etherparse::IpHeaders::from_slice(ip).is_ok_and(|(h, _)| src_of(&h) == addr(src))
}

#[test]
fn same_inner_connection_in_two_tunnels_is_two_connections() {
    let (vtep_a, vtep_b, vtep_c) = (addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3"));
    // (VNI, the client side's VTEP, tag): two tenants between the same VTEPs, a third
    // tenant reusing VNI 42 between other VTEPs, and one more copy captured bare.
    let tenants: [(Option<u32>, IpAddr, u8); 4] = [
        (Some(42), vtep_a, 1),
        (Some(43), vtep_a, 2),
        (Some(42), vtep_c, 3),
        (None, vtep_a, 4),
    ];
    let mut frames = Vec::new();
    for (vni, vtep, tag) in tenants {
        for (i, f) in conversation(tag).frames.into_iter().enumerate() {
            let from_client = inner_is_from(&f.data, "10.0.0.1");
            let data = match vni {
                None => f.data,
                Some(vni) => {
                    let (s, d) = ends(from_client, vtep, vtep_b);
                    // The source port is a flow hash: it differs between directions.
                    let sport = if from_client { 51000 } else { 62000 };
                    eth_ip(&udp(s, d, sport, 4789, &vxlan(vni, &f.data)))
                }
            };
            // Interleaved: each tenant's i-th packet one after the other.
            let ts = misdirect::Timestamp(f.ts.0 + i as i64 * 1_000 + i64::from(tag));
            frames.push(Frame {
                ts,
                orig_len: data.len() as u32,
                data,
            });
        }
    }
    frames.sort_by_key(|f| f.ts);
    let bytes = pcap(LINKTYPE_ETHERNET, &frames);
    let (sink, stats) = run_one(bytes.clone());
    assert!(stats.anomalies.is_empty(), "{:?}", stats.anomalies);
    assert_eq!(sink.conns.len(), 4, "one connection per tunnel context");
    let mut seen = Vec::new();
    for s in sink.conns.values() {
        let tag = s.c2s[0];
        assert_eq!(s.c2s, vec![tag; 300], "tenant {tag}: client bytes");
        assert_eq!(s.s2c, vec![tag ^ 0xff; 700], "tenant {tag}: server bytes");
        assert_eq!(s.record().close, misdirect::flow::Close::Fin);
        seen.push((
            tag,
            s.record()
                .encapsulation
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (1, vec!["vxlan 42 192.0.2.1→192.0.2.2".to_string()]),
            (2, vec!["vxlan 43 192.0.2.1→192.0.2.2".to_string()]),
            (3, vec!["vxlan 42 192.0.2.3→192.0.2.2".to_string()]),
            (4, vec![]),
        ]
    );
    // The report keeps them apart too, with the same inner addresses.
    let r = analyze_bytes(bytes, None, &Limits::default());
    assert_eq!(r.connections.len(), 4);
    assert!(r
        .connections
        .iter()
        .all(|c| c.client.to_string() == "10.0.0.1:40000"));
}

#[test]
fn fragments_inside_two_tunnels_never_mix() {
    let (client, server) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:443".parse().unwrap(),
    );
    let mut frames = Vec::new();
    let mut t = 0;
    let mut push = |data: Vec<u8>| {
        t += 1;
        frames.push(Frame::new(t, data));
    };
    let wrap = |vni: u32, ip: &[u8], from_client: bool| {
        let (s, d) = ends(from_client, addr("192.0.2.1"), addr("192.0.2.2"));
        eth_ip(&udp(s, d, 50000, 4789, &vxlan(vni, &eth_ip(ip))))
    };
    for vni in [1, 2] {
        push(wrap(
            vni,
            &tcp_packet(client, server, 10, None, "S", b""),
            true,
        ));
        push(wrap(
            vni,
            &tcp_packet(server, client, 50, Some(11), "SA", b""),
            false,
        ));
    }
    // The same inner datagram id in both tunnels, fragments interleaved.
    let big = |tag: u8| tcp_packet(client, server, 11, Some(51), "PA", &[tag; 3000]);
    let f1 = fragment_ipv4(&big(0x11), 1480, 77);
    let f2 = fragment_ipv4(&big(0x22), 1480, 77);
    for (a, b) in f1.iter().zip(&f2) {
        push(wrap(1, a, true));
        push(wrap(2, b, true));
    }
    let (sink, stats) = run_one(pcap(LINKTYPE_ETHERNET, &frames));
    assert!(stats.anomalies.is_empty(), "{:?}", stats.anomalies);
    assert_eq!(stats.decode.ip_datagrams_reassembled, 2);
    let got: Vec<Vec<u8>> = sink.conns.values().map(|s| s.c2s.clone()).collect();
    assert_eq!(got, vec![vec![0x11; 3000], vec![0x22; 3000]]);
}

#[test]
fn a_fragment_inside_a_fragmented_tunnel_packet() {
    // Inner fragments, each carried in a VXLAN datagram the underlay fragmented again: two
    // reassemblies for the packets that complete both.
    let (client, server) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:443".parse().unwrap(),
    );
    let vx = |ip: &[u8], from_client: bool| {
        let (s, d) = ends(from_client, addr("192.0.2.1"), addr("192.0.2.2"));
        udp(s, d, 50000, 4789, &vxlan(9, &eth_ip(ip)))
    };
    let mut frames = vec![
        Frame::new(
            1,
            eth_ip(&vx(&tcp_packet(client, server, 10, None, "S", b""), true)),
        ),
        Frame::new(
            2,
            eth_ip(&vx(
                &tcp_packet(server, client, 50, Some(11), "SA", b""),
                false,
            )),
        ),
    ];
    // 20 + 4180 bytes of TCP: three inner fragments of 1400, each in an outer datagram too
    // large for one piece; the last outer piece completes both datagrams.
    let big = tcp_packet(client, server, 11, Some(51), "PA", &[0x5a; 4180]);
    let mut t = 3;
    for (i, inner) in fragment_ipv4(&big, 1400, 5).iter().enumerate() {
        for outer in fragment_ipv4(&vx(inner, true), 800, 100 + i as u16) {
            frames.push(Frame::new(t, eth_ip(&outer)));
            t += 1;
        }
    }
    let (sink, stats) = run_one(pcap(LINKTYPE_ETHERNET, &frames));
    assert!(stats.anomalies.is_empty(), "{:?}", stats.anomalies);
    let s = sink.conns.values().next().unwrap();
    assert_eq!(s.c2s, vec![0x5a; 4180]);
    // Three outer datagrams and the inner one.
    assert_eq!(stats.decode.ip_datagrams_reassembled, 4);
}

// ---------------------------------------------------------------- hostile and odd headers

/// One Ethernet frame through the decoder: its anomalies and packet counts.
fn decode_frame(frame: Vec<u8>, orig_len: Option<u32>, limits: &Limits) -> RunStats {
    let len = frame.len() as u32;
    let f = Frame {
        ts: misdirect::Timestamp(1_000),
        orig_len: orig_len.unwrap_or(len),
        data: frame,
    };
    run_files(vec![pcap(LINKTYPE_ETHERNET, &[f])], limits).1
}

fn syn() -> Vec<u8> {
    tcp_packet(
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:443".parse().unwrap(),
        1,
        None,
        "S",
        b"",
    )
}

#[test]
fn malformed_tunnel_headers_are_named_anomalies() {
    let (s, d) = (addr("192.0.2.1"), addr("192.0.2.2"));
    let inner = eth_ip(&syn());
    let gre_ip = |g: Vec<u8>| eth_ip(&common::encap::ip(s, d, 47, &g));
    let mut no_i_flag = vxlan(42, &inner);
    no_i_flag[0] = 0;
    let mut geneve_v1 = geneve(5, ETHERTYPE_TEB, 0, &inner);
    geneve_v1[0] = 0x40;
    let mut geneve_long_options = geneve(5, ETHERTYPE_TEB, 0, &[]);
    geneve_long_options[0] = 0x3f;
    let mut routing = gre(GreOpts::default(), ETHERTYPE_IPV4, &syn());
    routing[0] = 0x40;
    let mut gre_v2 = gre(GreOpts::default(), ETHERTYPE_IPV4, &syn());
    gre_v2[1] = 0x02;
    let mut keyed_short = gre(GreOpts::default(), ETHERTYPE_IPV4, &[]);
    keyed_short[0] = 0x20; // key announced, not there
    let mut erspan_ver = erspan2(1, 1, &inner);
    erspan_ver[8] = 0x20; // type III's version in a type II header
    let mut no_bottom = mpls(&[16], &syn());
    no_bottom[2] &= !0x01;
    let mut pado = pppoe(1, &syn());
    pado[1] = 0x07; // a discovery code in the session stage
    let cases: Vec<(&str, Vec<u8>, Anomaly)> = vec![
        (
            "vxlan without I flag",
            eth_ip(&udp(s, d, 1, 4789, &no_i_flag)),
            Anomaly::VxlanHeaderInvalid,
        ),
        (
            "vxlan short",
            eth_ip(&udp(s, d, 1, 4789, &[0x08, 0, 0])),
            Anomaly::VxlanHeaderInvalid,
        ),
        (
            "geneve version 1",
            eth_ip(&udp(s, d, 1, 6081, &geneve_v1)),
            Anomaly::GeneveHeaderInvalid,
        ),
        (
            "geneve options past the end",
            eth_ip(&udp(s, d, 1, 6081, &geneve_long_options)),
            Anomaly::GeneveHeaderInvalid,
        ),
        (
            "gre source routing",
            gre_ip(routing),
            Anomaly::GreHeaderInvalid,
        ),
        ("gre version 2", gre_ip(gre_v2), Anomaly::GreHeaderInvalid),
        (
            "gre key missing",
            gre_ip(keyed_short),
            Anomaly::GreHeaderInvalid,
        ),
        (
            "erspan version",
            gre_ip(erspan_ver),
            Anomaly::ErspanHeaderInvalid,
        ),
        (
            "erspan II short",
            gre_ip(gre(
                GreOpts {
                    seq: Some(1),
                    ..GreOpts::default()
                },
                ETHERTYPE_ERSPAN_2,
                &[0x10, 0],
            )),
            Anomaly::ErspanHeaderInvalid,
        ),
        (
            "mpls without bottom of stack",
            eth(ETHERTYPE_MPLS, &no_bottom[..4]),
            Anomaly::MplsHeaderInvalid,
        ),
        (
            "pppoe discovery code",
            eth(ETHERTYPE_PPPOE_SESSION, &pado),
            Anomaly::PppoeHeaderInvalid,
        ),
        (
            "inner ip header",
            eth_ip(&common::encap::ip(s, d, 4, &[0x45, 0, 0])),
            Anomaly::IpHeaderInvalid,
        ),
        (
            "inner ethernet",
            eth_ip(&udp(s, d, 1, 4789, &vxlan(1, &[1, 2, 3]))),
            Anomaly::LinkHeaderInvalid,
        ),
    ];
    for (what, frame, anomaly) in cases {
        let stats = decode_frame(frame, None, &Limits::default());
        assert_eq!(
            stats.anomalies.by_name(),
            vec![(anomaly.name(), 1)],
            "{what}"
        );
        assert_eq!(stats.connections, 0, "{what}");
    }
    // A VXLAN or GENEVE header that does not parse leaves a plain UDP datagram.
    let stats = decode_frame(
        eth_ip(&udp(s, d, 1, 4789, &no_i_flag)),
        None,
        &Limits::default(),
    );
    assert_eq!((stats.decode.udp, stats.decode.encapsulated), (1, 0));
}

#[test]
fn undecoded_payloads_are_counted_not_reported() {
    let (s, d) = (addr("192.0.2.1"), addr("192.0.2.2"));
    let limits = Limits::default();
    // PPTP's enhanced GRE (version 1) carries PPP: other IP, as before tunnels were decoded.
    let mut pptp = gre(GreOpts::default(), 0x880b, &[0xff, 0x03, 0, 0x21]);
    pptp[1] = 0x01;
    let st = decode_frame(eth_ip(&common::encap::ip(s, d, 47, &pptp)), None, &limits);
    assert!(st.anomalies.is_empty());
    assert_eq!(st.decode.other_ip, 1);
    // A GRE protocol type not decoded (WCCP).
    let st = decode_frame(
        eth_ip(&common::encap::ip(
            s,
            d,
            47,
            &gre(GreOpts::default(), 0x883e, &[0; 8]),
        )),
        None,
        &limits,
    );
    assert_eq!((st.decode.other_ip, st.anomalies.is_empty()), (1, true));
    // PPP's LCP in a PPPoE session, an MPLS OAM channel: not IP.
    let mut lcp = pppoe(1, &[0; 4]);
    lcp[6..8].copy_from_slice(&0xc021u16.to_be_bytes());
    let st = decode_frame(eth(ETHERTYPE_PPPOE_SESSION, &lcp), None, &limits);
    assert_eq!((st.decode.not_ip, st.anomalies.is_empty()), (1, true));
    let st = decode_frame(
        eth(ETHERTYPE_MPLS, &mpls(&[13], &[0x10, 0, 0, 0])),
        None,
        &limits,
    );
    assert_eq!((st.decode.not_ip, st.anomalies.is_empty()), (1, true));
    // GENEVE carrying a protocol type not decoded: plain UDP.
    let st = decode_frame(
        eth_ip(&udp(s, d, 1, 6081, &geneve(1, 0x1234, 0, &[0; 8]))),
        None,
        &limits,
    );
    assert_eq!((st.decode.udp, st.anomalies.is_empty()), (1, true));
}

#[test]
fn a_tunnel_header_cut_by_the_snap_length_is_only_truncated() {
    let (s, d) = (addr("192.0.2.1"), addr("192.0.2.2"));
    let limits = Limits::default();
    for (what, frame, keep) in [
        (
            "vxlan",
            eth_ip(&udp(s, d, 1, 4789, &vxlan(1, &eth_ip(&syn())))),
            14 + 20 + 8 + 4,
        ),
        (
            "gre key",
            eth_ip(&common::encap::ip(
                s,
                d,
                47,
                &gre(
                    GreOpts {
                        key: Some(5),
                        ..GreOpts::default()
                    },
                    ETHERTYPE_IPV4,
                    &syn(),
                ),
            )),
            14 + 20 + 6,
        ),
        (
            "mpls",
            eth(ETHERTYPE_MPLS, &mpls(&[1, 2, 3], &syn())),
            14 + 6,
        ),
        (
            "inner tcp",
            eth_ip(&common::encap::ip(s, d, 4, &syn())),
            14 + 20 + 20 + 10,
        ),
    ] {
        let full = frame.len() as u32;
        let st = decode_frame(frame[..keep].to_vec(), Some(full), &limits);
        assert_eq!(
            st.anomalies.by_name(),
            vec![("snaplen_truncated", 1)],
            "{what}"
        );
    }
    // A snap length that cuts the inner payload: the connection is there, the rest a gap.
    let (client, server) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:443".parse().unwrap(),
    );
    let wrap = |ip: Vec<u8>| eth_ip(&udp(s, d, 1, 4789, &vxlan(3, &eth_ip(&ip))));
    let frames = vec![
        Frame::new(1, wrap(tcp_packet(client, server, 10, None, "S", b""))),
        Frame::new(2, wrap(tcp_packet(server, client, 50, Some(11), "SA", b""))),
        {
            let full = wrap(tcp_packet(client, server, 11, Some(51), "PA", &[7; 1000]));
            let orig_len = full.len() as u32;
            Frame {
                ts: misdirect::Timestamp(3_000),
                data: full[..full.len() - 600].to_vec(),
                orig_len,
            }
        },
    ];
    let (sink, st) = run_one(pcap(LINKTYPE_ETHERNET, &frames));
    assert_eq!(st.anomalies.by_name(), vec![("snaplen_truncated", 1)]);
    let s = sink.conns.values().next().unwrap();
    assert_eq!(
        (
            s.c2s.len(),
            s.gaps(misdirect::flow::Direction::ClientToServer)
        ),
        (400, vec![600])
    );
}

#[test]
fn nesting_is_bounded() {
    // IP-in-IP `n` deep around a SYN.
    let nested = |n: usize| {
        let mut p = syn();
        for i in 0..n {
            let s = addr(&format!("192.0.2.{}", i + 1));
            p = common::encap::ip(s, addr("198.51.100.1"), 4, &p);
        }
        eth_ip(&p)
    };
    let limits = Limits::default();
    assert_eq!(limits.max_encapsulation_depth, 4);
    let st = decode_frame(nested(4), None, &limits);
    assert!(st.anomalies.is_empty());
    assert_eq!((st.connections, st.decode.encapsulated), (1, 1));
    for n in [5, 30] {
        let st = decode_frame(nested(n), None, &limits);
        assert_eq!(
            st.anomalies.by_name(),
            vec![("encapsulation_depth_limit", 1)],
            "{n} deep"
        );
        assert_eq!(st.connections, 0);
    }
    // Depth 0 turns tunnel decoding off.
    let off = Limits {
        max_encapsulation_depth: 0,
        ..Limits::default()
    };
    let st = decode_frame(nested(1), None, &off);
    assert_eq!(
        st.anomalies.by_name(),
        vec![("encapsulation_depth_limit", 1)]
    );
    let st = decode_frame(nested(0), None, &off);
    assert_eq!(st.connections, 1);
}

// ---------------------------------------------------------------- reports and the CLI

#[test]
fn reports_show_the_encapsulation() {
    let enc = analyze_sample("vxlan-http1.pcap");
    let bare = analyze_sample("vxlan-http1-bare.pcap");
    let j = json(&enc);
    assert_eq!(j["schema_version"], "0.6.0");
    assert_eq!(
        j["connections"][0]["encapsulation"],
        serde_json::json!([{"kind": "vxlan", "vni": 42, "outer_src": "192.0.2.1", "outer_dst": "192.0.2.2"}])
    );
    assert!(j["summary"]["packets"]["encapsulated"].as_u64().unwrap() > 0);
    let jb = json(&bare);
    assert!(
        jb["connections"][0].get("encapsulation").is_none(),
        "omitted when bare"
    );
    let text = |r: &Report| {
        let mut out = Vec::new();
        misdirect::report::write(
            r,
            misdirect::report::Format::Text,
            misdirect::report::Style { color: false },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    let t = text(&enc);
    assert!(t.contains("TUNNEL"), "{t}");
    assert!(t.contains("vxlan 42 192.0.2.1→192.0.2.2"), "{t}");
    assert!(t.contains("Tunnelled packets: "), "{t}");
    let tb = text(&bare);
    assert!(!tb.contains("TUNNEL") && !tb.contains("Tunnelled"), "{tb}");
    // Every kind's JSON shape.
    let kinds_json: Vec<serde_json::Value> = cases_json();
    assert_eq!(
        kinds_json,
        vec![
            serde_json::json!({"kind": "geneve", "vni": 5, "outer_src": "198.51.100.1", "outer_dst": "198.51.100.2"}),
            serde_json::json!({"kind": "gre", "key": 1001, "outer_src": "198.51.100.1", "outer_dst": "198.51.100.2"}),
            serde_json::json!({"kind": "erspan", "type": 2, "session": 100, "outer_src": "198.51.100.9", "outer_dst": "198.51.100.10"}),
            serde_json::json!({"kind": "erspan", "type": 1, "outer_src": "198.51.100.9", "outer_dst": "198.51.100.10"}),
            serde_json::json!({"kind": "ip_in_ip", "outer_src": "198.51.100.1", "outer_dst": "198.51.100.2"}),
            serde_json::json!({"kind": "mpls", "labels": [16, 1000]}),
            serde_json::json!({"kind": "pppoe", "session": 4660}),
        ]
    );
}

/// The first connection's outermost layer, as JSON, for a few of [`cases`].
fn cases_json() -> Vec<serde_json::Value> {
    let bare = Bare::load(V4);
    let want = [
        "geneve-ethernet-with-option",
        "gre-checksum-key-sequence",
        "erspan-type-2",
        "erspan-type-1",
        "ipip",
        "mpls-two-labels",
        "pppoe-ipv4",
    ];
    let all = cases();
    want.iter()
        .map(|name| {
            let c = all.iter().find(|c| c.name == *name).unwrap();
            let r = analyze_bytes(bare.wrapped(&*c.wrap), None, &c.limits);
            json(&r.connections[0].encapsulation[0])
        })
        .collect()
}

#[test]
fn vxlan_port_flag() {
    let bare = Bare::load(V4);
    let c = cases()
        .into_iter()
        .find(|c| c.name == "vxlan-port-8472")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("misdirect-encap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vxlan-8472.pcap");
    std::fs::write(&path, bare.wrapped(&*c.wrap)).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![path.to_str().unwrap()];
        args.extend(extra);
        common::analyze_cli(&args)
    };
    let with = run(&["--vxlan-port", "8472", "--vxlan-port", "9999"]);
    assert_eq!(with["connections"].as_array().unwrap().len(), 2);
    assert_eq!(with["connections"][1]["encapsulation"][0]["vni"], 8);
    let without = run(&[]);
    assert_eq!(without["connections"].as_array().unwrap().len(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- throughput

/// Decoding cost of VXLAN against the same packets bare. Run in release:
/// `cargo test --release --test encapsulation -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_vxlan_against_bare() {
    use misdirect::capture::{LinkType, RawPacket};
    use misdirect::wire::Decoder;
    let bare = Bare::load("vxlan-outer-fragments-bare");
    let frames: Vec<Vec<u8>> = bare.packets.iter().map(|p| p.data.clone()).collect();
    let (a, b) = (addr("192.0.2.1"), addr("192.0.2.2"));
    let vx: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| eth_ip(&udp(a, b, 50000, 4789, &vxlan(42, f))))
        .collect();
    let rounds = 20_000;
    let mut results = Vec::new();
    for (what, pkts) in [("bare", &frames), ("vxlan", &vx)] {
        let bytes: usize = pkts.iter().map(Vec::len).sum::<usize>() * rounds;
        let mut decoder = Decoder::new(&Limits::default());
        let start = std::time::Instant::now();
        let mut tcp = 0u64;
        for r in 0..rounds {
            for (i, p) in pkts.iter().enumerate() {
                let raw = RawPacket {
                    index: (r * pkts.len() + i) as u64,
                    origin: Default::default(),
                    ts: misdirect::Timestamp(0),
                    link: LinkType::Ethernet,
                    data: p,
                    orig_len: p.len() as u32,
                };
                if decoder.decode(&raw).is_some() {
                    tcp += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let n = (rounds * pkts.len()) as f64;
        results.push((what, n / secs / 1e6, bytes as f64 / secs / 1e9, tcp));
    }
    for (what, mpps, gbps, tcp) in &results {
        println!(
            "decode {what:>6}: {mpps:.2} M packets/s, {gbps:.2} GB/s of frames ({tcp} decoded)"
        );
    }
    // The whole pipeline (decode, reassembly, protocol detection, report) on a larger
    // capture: 400 connections of 256 KiB each way in 1448-byte segments, bare and in VXLAN.
    let mut frames = Vec::new();
    for i in 0..400u32 {
        let client = format!("10.{}.{}.1:{}", i / 200, i % 200, 40000 + i);
        let mut c = Conversation::new(&client, "10.9.9.9:8080", Link::Ethernet, i, !i);
        c.ts_us += i64::from(i) * 10;
        c.handshake();
        c.client_sends(&vec![b'q'; 256 << 10], 1448);
        c.server_sends(&vec![b'r'; 256 << 10], 1448);
        c.close();
        frames.extend(c.frames);
    }
    frames.sort_by_key(|f| f.ts);
    let vxlan_frames: Vec<Frame> = frames
        .iter()
        .map(|f| {
            let data = eth_ip(&udp(a, b, 50000, 4789, &vxlan(42, &f.data)));
            Frame {
                ts: f.ts,
                orig_len: data.len() as u32,
                data,
            }
        })
        .collect();
    for (what, fs) in [("bare", &frames), ("vxlan", &vxlan_frames)] {
        let bytes = pcap(LINKTYPE_ETHERNET, fs);
        let len = bytes.len();
        let start = std::time::Instant::now();
        let r = analyze_bytes(bytes, None, &Limits::default());
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(r.connections.len(), 400);
        println!(
            "pipeline {what:>6}: {} packets, {:.0} MB in {secs:.3} s: {:.2} M packets/s, {:.2} GB/s",
            fs.len(),
            len as f64 / 1e6,
            fs.len() as f64 / secs / 1e6,
            len as f64 / secs / 1e9
        );
    }
}

// ---------------------------------------------------------------- hostile tunnels

/// Every wrapped case, its packets cut at every length and with bytes flipped at random,
/// through the fuzzers' decode entry point (which checks the decoder's own invariants) and
/// the whole pipeline with small limits: nothing panics. Deterministic (xorshift64*).
#[test]
fn damaged_tunnel_packets_never_panic() {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let small = Limits {
        max_connections: 4,
        max_ip_fragment_datagrams: 2,
        max_ooo_bytes_per_direction: 2048,
        ..Limits::default()
    };
    let bare = Bare::load(V4);
    for c in cases() {
        let pkts = read_packets_of(bare.wrapped(&*c.wrap));
        for p in pkts.iter().take(12) {
            // Link type Ethernet (first byte 0), one packet.
            for len in 0..p.len() {
                let mut input = vec![0u8];
                input.extend_from_slice(&p[..len]);
                misdirect::fuzzing::decode_packet(&input);
            }
        }
        for _ in 0..40 {
            let frames: Vec<Frame> = pkts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut data = p.clone();
                    for _ in 0..1 + next() % 4 {
                        let at = (next() as usize) % data.len();
                        data[at] ^= 1 << (next() % 8);
                    }
                    if next() % 8 == 0 {
                        data.truncate((next() as usize) % data.len());
                    }
                    Frame::new(i as i64, data)
                })
                .collect();
            let _ = run_files(vec![pcap(LINKTYPE_ETHERNET, &frames)], &small);
        }
    }
}

fn read_packets_of(capture: Vec<u8>) -> Vec<Vec<u8>> {
    let path = std::env::temp_dir().join(format!(
        "misdirect-encap-damage-{}-{}.pcap",
        std::process::id(),
        capture.len()
    ));
    std::fs::write(&path, capture).unwrap();
    let pkts = read_packets(&path).into_iter().map(|p| p.data).collect();
    let _ = std::fs::remove_file(&path);
    pkts
}
