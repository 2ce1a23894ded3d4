//! Every bound on memory the analyzer keeps, in one place.
//!
//! A capture is attacker-controlled input: each table and buffer below has a limit, and hitting
//! one is reported as an anomaly named after the limit (see [`crate::Anomaly`]) and degrades in
//! the documented way instead of growing. `docs/limits.md` lists them for users.

/// Named limits; `Limits::default()` is what the CLI uses unless a flag overrides a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest capture block (pcap record or pcapng block) read into memory. Anything larger
    /// cannot be a real packet (the largest snaplen in use is 256 KiB) and ends the file with
    /// an error. Anomaly-free by design: this is about the file, not the traffic.
    pub max_capture_block: usize,
    /// TCP connections tracked at once. When full, the connection idle the longest (by capture
    /// time) is finished as `evicted` and its slot reused. Anomaly: `flow_table_limit`.
    pub max_connections: usize,
    /// Connections that carried no payload byte (SYN floods, port scans, refused or
    /// handshake-only connections) listed in the report. Past it they are counted in
    /// `summary.unlisted_connections`, not listed, so a flood of a million SYNs does not
    /// keep a million records. Anomaly: `connection_record_limit`.
    pub max_empty_connection_records: usize,
    /// Capture time a connection that ended (FIN both ways, or RST) stays in the table for
    /// late packets (retransmitted FINs and ACKs) before it is finished and its record made,
    /// as Zeek's `tcp_close_delay`. A packet later than that starts a new connection. Keeps
    /// the table to the connections open about now, not every one the capture ended.
    pub close_linger_ns: i64,
    /// Out-of-order bytes buffered per direction of a connection, waiting for a hole to fill.
    /// When exceeded the hole is declared a gap and buffered data is delivered.
    /// Anomaly: `tcp_reassembly_limit`.
    pub max_ooo_bytes_per_direction: usize,
    /// Out-of-order bytes buffered over all connections together; the same degradation as
    /// the per-direction limit, applied to the direction that needed more.
    /// Anomaly: `tcp_reassembly_limit`.
    pub max_ooo_bytes_total: usize,
    /// Out-of-order segments buffered per direction (each costs a map node besides its bytes,
    /// so a flood of 1-byte segments is bounded too). Anomaly: `tcp_reassembly_limit`.
    pub max_ooo_segments_per_direction: usize,
    /// Capture time a hole may stay open after the peer acknowledged the bytes in it, before
    /// they are declared lost. Captures reorder (SPAN ports, multi-queue NICs, merged files),
    /// so an ACK can be written before the data it acknowledges; within this window the data
    /// may still come. Not a memory limit, but the buffer limits above still apply meanwhile.
    pub reorder_window_ns: i64,
    /// IP datagrams being reassembled from fragments at once. When full the oldest is dropped.
    /// Anomaly: `ip_fragment_limit`.
    pub max_ip_fragment_datagrams: usize,
    /// Capture time after which an incomplete fragmented datagram is dropped (RFC 791 suggests
    /// 15 s; Linux uses 30 s). Anomaly: `ip_fragment_timeout`.
    pub ip_fragment_timeout_ns: i64,
    /// Tunnels (VXLAN, GENEVE, GRE, ERSPAN, IP-in-IP, MPLS, PPPoE) one packet may be nested
    /// in; a packet in more is not decoded. Bounds the work per packet, whatever it claims.
    /// Anomaly: `encapsulation_depth_limit`.
    pub max_encapsulation_depth: usize,
    /// UDP destination ports decoded as VXLAN besides IANA's 4789 (Linux's default is 8472,
    /// for instance). Not a bound: configuration the decoder needs, kept here because
    /// `Limits` is what every layer is built from.
    pub vxlan_ports: Vec<u16>,
    /// Bytes of one HTTP/1 message head (start line and headers). A longer head is dropped
    /// and the direction resynchronises on the next message. Anomaly: `http1_head_limit`.
    pub max_http_head_bytes: usize,
    /// Bytes of one HTTP/2 header block (HEADERS or PUSH_PROMISE plus CONTINUATIONs), and of
    /// any other HTTP/2 frame payload kept. A larger block is skipped and that direction's
    /// HPACK table desynchronised. Anomalies: `http2_header_block_limit`, `http2_frame_limit`.
    pub max_http2_header_block: usize,
    /// CONTINUATION frames in one header block. Empty ones cost nothing to hold but can be
    /// sent forever (the 2024 "CONTINUATION flood"); past this the block is skipped as if
    /// too large. Anomaly: `http2_continuation_limit`.
    pub max_http2_continuations: usize,
    /// Decoded size of one header list (RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE measure:
    /// name and value lengths plus 32 per field). Fields are looked at as they are decoded,
    /// never gathered, so an HPACK bomb (small blocks that reference one large entry
    /// thousands of times) costs only time; past this the rest of the block is decoded for
    /// the dynamic table only, its fields not read. Anomaly: `http2_header_list_limit`.
    pub max_http2_header_list: usize,
    /// Bytes an HPACK dynamic table may hold here, whatever the peers allow. Entries pushed
    /// out by this cap become unknown when referenced (never guessed).
    pub max_hpack_table: usize,
    /// HTTP exchanges (and FTP/SMTP replies) listed per connection; the rest are counted.
    /// Anomaly: `http_exchange_limit`.
    pub max_exchanges_per_connection: usize,
    /// Bytes kept of one header value or request target; longer ones are cut and marked
    /// with "…". Anomaly: `http_field_truncated`.
    pub max_field_bytes: usize,
    /// Live capture following a growing key log: encrypted bytes all TLS sessions together
    /// hold while waiting for their keys (each also within `--hold-for-keys`). A session
    /// that would pass it gives up waiting and stays undecrypted (its direction info says so).
    pub max_held_for_keys: usize,
    /// Bytes of incomplete TLS records that decrypting sessions hold while the rest of each
    /// record arrives (each charged its record's whole length; divided between threads like
    /// `max_connections`). A record is authenticated whole, so it is held until its last
    /// byte; past this, application-data records of 4 KiB or more on application keys that
    /// have opened application data already (AES-GCM and ChaCha20-Poly1305 suites) are
    /// instead decrypted as their bytes come and authenticated at their end. Other records
    /// (shorter ones, handshake flights, a direction's first application data, CBC and CCM
    /// suites) are still held past it: it is a budget, not a cap. Not an anomaly: the
    /// plaintext is the same; a record that fails has passed on its plaintext before the
    /// failure is known. A note on standard error counts the records streamed. Kept small:
    /// held records' buffers, freed between the connections' long-lived state, leave the
    /// heap in pieces (16 MiB cost 11 MB more than 4 MiB at 100k connections, and streaming
    /// was no slower there; `docs/performance.md`, tenth session).
    pub max_tls_records_held: usize,
    /// Bytes of one TLS handshake message (a certificate chain is the largest, tens of KiB
    /// in practice; the protocol allows 16 MiB). A longer one stops that direction's
    /// handshake parsing. Anomaly: `tls_handshake_limit`.
    pub max_tls_handshake_message: usize,
    /// 0-RTT bytes a client may send before the ServerHello says which suite protects them
    /// (a server's max_early_data_size is typically 16 KiB, RFC 8446 §4.6.1); they are held
    /// until then. Beyond it, that direction stops being decrypted.
    /// Anomaly: `tls_decrypt_failed`.
    pub max_tls_early_data: usize,
    /// Where finished connection records wait for the report: `false`, in memory; `true`,
    /// on a temporary file, read back as the report is written, so memory does not grow
    /// with the capture (`analysis::spill`). `misdirect analyze` spills; the library keeps
    /// them for a [`crate::analysis::Report`] of records.
    pub spill_records: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_capture_block: 16 << 20,
            max_connections: 262_144,
            max_empty_connection_records: 65_536,
            close_linger_ns: 5 * crate::Timestamp::NANOS_PER_SEC,
            max_ooo_bytes_per_direction: 1 << 20,
            max_ooo_bytes_total: 64 << 20,
            max_ooo_segments_per_direction: 2048,
            reorder_window_ns: 20_000_000,
            max_ip_fragment_datagrams: 256,
            ip_fragment_timeout_ns: 30 * crate::Timestamp::NANOS_PER_SEC,
            max_encapsulation_depth: 4,
            vxlan_ports: Vec::new(),
            max_http_head_bytes: 64 << 10,
            max_http2_header_block: 256 << 10,
            max_http2_continuations: 1024,
            max_http2_header_list: 1 << 20,
            max_hpack_table: 64 << 10,
            max_exchanges_per_connection: 100_000,
            max_field_bytes: 4096,
            max_held_for_keys: 64 << 20,
            max_tls_records_held: 4 << 20,
            max_tls_handshake_message: 128 << 10,
            max_tls_early_data: 64 << 10,
            spill_records: false,
        }
    }
}

impl Limits {
    /// The limits of the HTTP parsers, shared by every connection (a copy in each was 72
    /// bytes, three times over).
    pub fn http(&self) -> std::sync::Arc<crate::proto::http::HttpLimits> {
        std::sync::Arc::new(crate::proto::http::HttpLimits {
            max_head_bytes: self.max_http_head_bytes,
            max_header_block: self.max_http2_header_block,
            max_continuations: self.max_http2_continuations,
            max_header_list: self.max_http2_header_list,
            max_hpack_table: self.max_hpack_table,
            max_exchanges: self.max_exchanges_per_connection,
            max_field_bytes: self.max_field_bytes,
            tls: crate::proto::tls::session::TlsLimits {
                max_handshake_message: self.max_tls_handshake_message,
                max_early_data: self.max_tls_early_data,
            },
        })
    }
}
