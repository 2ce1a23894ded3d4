//! TLS: records, handshake messages, key material and decryption (RFC 8446, RFC 5246).

pub mod decrypt;
pub mod handshake;
pub mod hello;
pub mod keylog;
pub mod keys;
pub mod record;
pub mod session;
