//! Named anomalies: malformed traffic and limits hit, counted and reported, never fatal.
//!
//! Names are stable snake_case strings (Zeek calls them "weirds"): reports and scripts rely on
//! them, so a name is never changed once released; new ones may be added.

use std::collections::BTreeMap;

macro_rules! anomalies {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// Something in the traffic that is malformed, unexpected, or hit a named limit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Anomaly {
            $(#[doc = $doc] $variant,)*
        }

        impl Anomaly {
            pub const ALL: &'static [Anomaly] = &[$(Anomaly::$variant,)*];

            /// The stable name used in every report.
            pub fn name(self) -> &'static str {
                match self { $(Anomaly::$variant => $name,)* }
            }

            /// One line for a person.
            pub fn description(self) -> &'static str {
                match self { $(Anomaly::$variant => $doc,)* }
            }
        }
    };
}

anomalies! {
    UnsupportedLinkType => "unsupported_link_type": "packet on an interface whose link type misdirect does not decode",
    SnaplenTruncated => "snaplen_truncated": "packet cut short by the capture's snap length; missing bytes are a gap",
    LinkHeaderInvalid => "link_header_invalid": "link-layer header too short or impossible",
    IpHeaderInvalid => "ip_header_invalid": "IPv4/IPv6 header (or extension header) too short or impossible",
    TcpHeaderInvalid => "tcp_header_invalid": "TCP header too short or with an impossible data offset",
    UdpHeaderInvalid => "udp_header_invalid": "UDP header too short or impossible",
    IpFragmentInvalid => "ip_fragment_invalid": "IP fragment that conflicts with others of its datagram",
    IpFragmentLimit => "ip_fragment_limit": "too many datagrams in reassembly at once; the oldest was dropped",
    IpFragmentTimeout => "ip_fragment_timeout": "fragmented datagram never completed within the timeout",
    VxlanHeaderInvalid => "vxlan_header_invalid": "UDP datagram to a VXLAN port whose header is short or lacks the I flag; kept as plain UDP",
    GeneveHeaderInvalid => "geneve_header_invalid": "UDP datagram to the GENEVE port whose header is short, has options beyond the packet, or a version other than 0; kept as plain UDP",
    GreHeaderInvalid => "gre_header_invalid": "GRE header short for its flags, with source routing, or of a version other than 0 (GRE) or 1 (PPTP)",
    ErspanHeaderInvalid => "erspan_header_invalid": "ERSPAN type II or III header short, or its version field not matching its GRE protocol type",
    MplsHeaderInvalid => "mpls_header_invalid": "MPLS label stack without its bottom-of-stack entry, or with nothing after it",
    PppoeHeaderInvalid => "pppoe_header_invalid": "PPPoE session header short, of another version/type than 1/1, with a non-zero code, or a length of 0",
    EncapsulationDepthLimit => "encapsulation_depth_limit": "a packet nested in more tunnels than the limit; it was not decoded",
    FlowTableLimit => "flow_table_limit": "connection table full; the connection idle the longest was evicted",
    TimeDisorder => "time_disorder": "a connection starts more than a second before one that opened ahead of it (the capture's clock stepped back); a retry or proxy leg across the step may be missed",
    ConnectionRecordLimit => "connection_record_limit": "a connection that carried no payload was not listed: the limit on such records was reached",
    TcpReassemblyLimit => "tcp_reassembly_limit": "out-of-order buffer full; the hole was declared a gap",
    TcpOverlapMismatch => "tcp_overlap_mismatch": "retransmitted bytes differ from the copy already held; the first copy was kept",
    TcpDataBeforeStart => "tcp_data_before_start": "segment entirely before the first byte this capture saw of the stream",
    TcpDataAfterClose => "tcp_data_after_close": "a direction carried data beyond its FIN or RST (counted once per direction; dropped)",
    TcpSynWithPayload => "tcp_syn_with_payload": "SYN carrying data (TCP Fast Open)",
    TlsRecordInvalid => "tls_record_invalid": "bytes in a TLS stream that are not a TLS record, or a record longer than the maximum; the direction is no longer parsed",
    TlsRecordTruncated => "tls_record_truncated": "a TLS stream ended inside a record",
    TlsClientHelloMalformed => "tls_client_hello_malformed": "ClientHello header or extensions block framing does not parse",
    TlsServerHelloMalformed => "tls_server_hello_malformed": "ServerHello header or extensions block framing does not parse",
    TlsEncryptedExtensionsMalformed => "tls_encrypted_extensions_malformed": "EncryptedExtensions framing does not parse",
    TlsCertificateMalformed => "tls_certificate_malformed": "Certificate message list framing does not parse",
    TlsCertificateUnparseable => "tls_certificate_unparseable": "leaf certificate is not parseable X.509",
    TlsSniMalformed => "tls_sni_malformed": "server_name extension unparseable, empty, of a non-host_name type or with invalid characters",
    TlsSniIpLiteral => "tls_sni_ip_literal": "SNI carries a literal IP address (RFC 6066 §3 forbids it)",
    TlsSniMultipleNames => "tls_sni_multiple_names": "SNI lists more than one host name (RFC 6066 §3 forbids it)",
    TlsExtensionMalformed => "tls_extension_malformed": "a TLS extension's content does not parse; it was ignored",
    TlsExtensionDuplicate => "tls_extension_duplicate": "a TLS extension type occurs twice in one message; the first was used",
    TlsHandshakeTrailingData => "tls_handshake_trailing_data": "bytes follow the last field of a handshake message",
    TlsHandshakeListCapped => "tls_handshake_list_capped": "a list in a handshake message exceeded its cap and was cut",
    TlsHandshakeLimit => "tls_handshake_limit": "a handshake message longer than the limit; the direction's handshake is no longer parsed",
    TlsDecryptFailed => "tls_decrypt_failed": "a record failed to decrypt or authenticate with the logged keys; decryption stopped for that direction",
    TlsGap => "tls_gap": "bytes of a TLS stream were never captured; parsing and decryption stopped for that direction",
    TlsUnsupported => "tls_unsupported": "keys were logged but the protocol version or cipher suite cannot be decrypted",
    Http1HeadInvalid => "http1_head_invalid": "bytes where an HTTP/1 message head was expected do not parse (or carry conflicting Content-Length values); the direction resynchronises on the next start line",
    Http1HeadLimit => "http1_head_limit": "an HTTP/1 message head longer than the limit; it was dropped and the direction resynchronises",
    Http1ChunkInvalid => "http1_chunk_invalid": "a chunked body's chunk-size line does not parse; the direction resynchronises",
    HttpFieldTruncated => "http_field_truncated": "a header value or request target longer than the kept length was cut",
    HttpExchangeLimit => "http_exchange_limit": "more HTTP exchanges (or FTP/SMTP replies) on one connection than are listed; the rest were counted",
    Http2PrefaceInvalid => "http2_preface_invalid": "a stream taken for HTTP/2 does not start with the client connection preface; it is no longer parsed",
    Http2FramingLost => "http2_framing_lost": "bytes of an HTTP/2 stream were lost across a frame boundary; the direction is no longer parsed",
    Http2FrameInvalid => "http2_frame_invalid": "an HTTP/2 frame whose payload does not fit its type (size, padding, stream 0)",
    Http2FrameLimit => "http2_frame_limit": "an HTTP/2 frame payload larger than the kept limit was skipped",
    Http2HeaderBlockLimit => "http2_header_block_limit": "an HTTP/2 header block with its CONTINUATIONs exceeded the limit; it was skipped",
    Http2ContinuationLimit => "http2_continuation_limit": "an HTTP/2 header block had more CONTINUATION frames than the limit; it was skipped and the HPACK table treated as unknown",
    Http2HeaderListLimit => "http2_header_list_limit": "an HTTP/2 header list decoded to more than the limit; the fields after it were not read",
    Http2ContinuationMissing => "http2_continuation_missing": "an HTTP/2 header block was interrupted by another frame, or a CONTINUATION came without one",
    HpackInvalid => "hpack_invalid": "an HPACK header block does not decode; that direction's dynamic table is treated as unknown from there on",
    ControlLineLimit => "control_line_limit": "an FTP/SMTP line longer than 4096 bytes; it was skipped",
    ControlReplyInvalid => "control_reply_invalid": "a line from an FTP/SMTP server that is not a 3-digit reply",
}

/// Counts per anomaly, serialised as a name-sorted map of name to count. The map is boxed
/// and made at the first anomaly: every open connection keeps two or three of these and
/// every record one, and nearly all stay empty (8 bytes each instead of 24).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(clippy::box_collection)]
pub struct AnomalyCounts(Option<Box<BTreeMap<Anomaly, u64>>>);

impl AnomalyCounts {
    pub fn add(&mut self, anomaly: Anomaly) {
        self.add_n(anomaly, 1);
    }

    pub fn add_n(&mut self, anomaly: Anomaly, n: u64) {
        if n > 0 {
            let map = self.0.get_or_insert_with(Box::default);
            *map.entry(anomaly).or_insert(0) += n;
        }
    }

    pub fn merge(&mut self, other: &AnomalyCounts) {
        for (&a, &n) in other.iter() {
            self.add_n(a, n);
        }
    }

    pub fn get(&self, anomaly: Anomaly) -> u64 {
        self.0
            .as_ref()
            .and_then(|m| m.get(&anomaly))
            .copied()
            .unwrap_or(0)
    }

    /// Never a made but empty map: counts are only ever added.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = (&Anomaly, &u64)> {
        self.0.iter().flat_map(|m| m.iter())
    }

    /// Name-sorted `(name, count)` pairs: the order every report uses.
    pub fn by_name(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self.iter().map(|(a, &n)| (a.name(), n)).collect();
        v.sort_unstable();
        v
    }
}

impl serde::Serialize for AnomalyCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let pairs = self.by_name();
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (name, n) in pairs {
            map.serialize_entry(name, &n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/limits.md is where users look names up; it must list every one.
    #[test]
    fn every_name_is_documented() {
        let doc = include_str!("../docs/limits.md");
        for a in Anomaly::ALL {
            assert!(
                doc.contains(&format!("`{}`", a.name())),
                "{} missing from docs/limits.md",
                a.name()
            );
        }
    }

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for a in Anomaly::ALL {
            assert!(seen.insert(a.name()), "duplicate {}", a.name());
            assert!(a
                .name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}
