//! TLS: records, handshake messages, key material and decryption (RFC 8446, RFC 5246).
