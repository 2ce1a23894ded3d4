//! Application protocols on reassembled streams: detection by content, TLS, and (later) HTTP.
//!
//! Parsers here are sans-IO stream parsers: in-order bytes of one direction, gaps and ends in;
//! owned records and anomalies out.

pub mod codec;
pub mod tls;
