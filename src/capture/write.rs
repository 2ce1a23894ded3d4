//! Writing captures: classic pcap and pcapng (little-endian).
//!
//! Used to build synthetic captures in tests and benchmarks, and to save what was analysed.
//! Writers take bytes and timestamps; they never read the network.

use super::DecryptionSecret;
use crate::Timestamp;
use std::io::{self, Write};

/// A classic pcap file with one link type.
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; `nanos` selects the nanosecond-resolution magic.
    pub fn new(mut out: W, linktype: u32, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&linktype.to_le_bytes())?;
        Ok(PcapWriter { out, nanos })
    }

    /// Writes one record; `data` is what was captured, `orig_len` the length on the wire.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let frac = if self.nanos {
            ts.subsec_nanos()
        } else {
            ts.subsec_nanos() / 1000
        };
        self.out.write_all(&(ts.secs() as u32).to_le_bytes())?;
        self.out.write_all(&frac.to_le_bytes())?;
        self.out.write_all(&len32(data)?.to_le_bytes())?;
        self.out.write_all(&orig_len.to_le_bytes())?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A pcapng file: one section, interfaces added as needed.
pub struct PcapNgWriter<W: Write> {
    out: W,
    /// Timestamp units per second, per interface.
    units: Vec<u64>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the Section Header Block.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut out, 0x0a0d_0d0a, &body)?;
        Ok(PcapNgWriter {
            out,
            units: Vec::new(),
        })
    }

    /// Declares an interface; `tsresol` is the pcapng `if_tsresol` (6: µs, 9: ns).
    /// Returns its interface id.
    pub fn add_interface(&mut self, linktype: u16, snaplen: u32, tsresol: u8) -> io::Result<u32> {
        let units = 10u64.checked_pow(u32::from(tsresol)).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "if_tsresol beyond 10^19")
        })?;
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        // if_tsresol option (code 9), padded to 32 bits, then opt_endofopt.
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[tsresol, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
        write_block(&mut self.out, 1, &body)?;
        self.units.push(units);
        Ok(self.units.len() as u32 - 1)
    }

    /// Writes an Enhanced Packet Block on interface `if_id`.
    pub fn write_packet(
        &mut self,
        if_id: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let units = *self
            .units
            .get(if_id as usize)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "undeclared interface"))?;
        let t = (ts.secs() as u64)
            .saturating_mul(units)
            .saturating_add(u64::from(ts.subsec_nanos()) * units / 1_000_000_000);
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&if_id.to_le_bytes());
        body.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(t as u32).to_le_bytes());
        body.extend_from_slice(&len32(data)?.to_le_bytes());
        body.extend_from_slice(&orig_len.to_le_bytes());
        body.extend_from_slice(data);
        pad4(&mut body);
        write_block(&mut self.out, 6, &body)
    }

    /// Writes a block of another kind as given (statistics, a simple packet, a packet on an
    /// interface not declared), padded to 32 bits.
    pub fn write_other(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let mut body = body.to_vec();
        pad4(&mut body);
        write_block(&mut self.out, block_type, &body)
    }

    /// Writes a Decryption Secrets Block.
    pub fn write_secrets(&mut self, secret: &DecryptionSecret) -> io::Result<()> {
        let mut body = Vec::with_capacity(8 + secret.data.len() + 3);
        body.extend_from_slice(&secret.secrets_type.to_le_bytes());
        body.extend_from_slice(&len32(&secret.data)?.to_le_bytes());
        body.extend_from_slice(&secret.data);
        pad4(&mut body);
        write_block(&mut self.out, 0x0a, &body)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total = u32::try_from(body.len() + 12)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "block too large"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

fn len32(data: &[u8]) -> io::Result<u32> {
    u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too large"))
}
