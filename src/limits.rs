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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_capture_block: 16 << 20,
            max_connections: 262_144,
            max_ooo_bytes_per_direction: 1 << 20,
            max_ooo_bytes_total: 64 << 20,
            max_ooo_segments_per_direction: 2048,
            reorder_window_ns: 20_000_000,
            max_ip_fragment_datagrams: 256,
            ip_fragment_timeout_ns: 30 * crate::Timestamp::NANOS_PER_SEC,
        }
    }
}
