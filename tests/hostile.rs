//! Hostile input never panics: garbage, truncations at every length, and packets whose bytes
//! were flipped at random inside valid capture framing (so the decoders and reassembly, not
//! just the file reader, see the damage). Deterministic; the fuzz targets in `fuzz/` go further.

mod common;

use common::*;
use misdirect::capture::{Capture, FileSource};
use misdirect::Limits;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Runs bytes as a capture file; an `Err` at open is fine, a panic is not.
fn run_bytes(bytes: Vec<u8>) {
    let limits = Limits {
        max_capture_block: 1 << 20,
        ..Limits::default()
    };
    let Ok(src) = FileSource::from_reader(
        "x".into(),
        std::io::Cursor::new(bytes),
        limits.max_capture_block,
    ) else {
        return;
    };
    let Ok(mut cap) = Capture::from_sources(vec![src]) else {
        return;
    };
    let mut sink = Collector::default();
    misdirect::pipeline::run(&mut cap, &limits, &mut sink, &mut |_| {});
}

fn base_capture(link: Link) -> Vec<Frame> {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", link, 0xffff_fff0, 7);
    c.handshake();
    c.client_sends(&[0x16; 700], 300);
    c.server_sends(&[0x17; 900], 400);
    c.close();
    c.frames
}

#[test]
fn truncated_at_every_length() {
    let frames = base_capture(Link::Ethernet);
    for bytes in [pcap(LINKTYPE_ETHERNET, &frames), pcapng(1, &frames)] {
        for len in 0..bytes.len() {
            run_bytes(bytes[..len].to_vec());
        }
    }
}

#[test]
fn random_garbage_and_flipped_headers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let len = rng.below(600);
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the time give it a valid magic so the block parsers get exercised.
        if rng.below(2) == 0 && v.len() >= 4 {
            let magic: &[u8] = match rng.below(3) {
                0 => &[0xd4, 0xc3, 0xb2, 0xa1],
                1 => &[0x4d, 0x3c, 0xb2, 0xa1],
                _ => &[0x0a, 0x0d, 0x0d, 0x0a],
            };
            v[..4].copy_from_slice(magic);
        }
        run_bytes(v);
    }
    // Valid framing with hostile lengths in headers.
    let good = pcap(LINKTYPE_ETHERNET, &base_capture(Link::Ethernet));
    for i in 0..good.len() {
        for val in [0x00, 0xff, 0x7f, 0x80] {
            let mut v = good.clone();
            v[i] = val;
            run_bytes(v);
        }
    }
}

#[test]
fn flipped_packet_bytes_in_every_link_type() {
    let mut rng = Rng(42);
    for link in [
        Link::Ethernet,
        Link::QinQ(1, 2),
        Link::Raw,
        Link::Null,
        Link::Sll,
        Link::Sll2,
    ] {
        let frames = base_capture(link);
        for _ in 0..400 {
            let mut mutated = frames.clone();
            for _ in 0..1 + rng.below(6) {
                let f = rng.below(mutated.len());
                let data = &mut mutated[f].data;
                if data.is_empty() {
                    continue;
                }
                match rng.below(4) {
                    0 => data.truncate(rng.below(data.len())),
                    1 => mutated[f].orig_len = rng.next() as u32,
                    _ => {
                        let i = rng.below(data.len());
                        data[i] = rng.next() as u8;
                    }
                }
            }
            run_bytes(pcap(link.linktype(), &mutated));
        }
    }
}
