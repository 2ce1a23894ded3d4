//! Writes a deterministic synthetic capture and its TLS key log, for benchmarks:
//!
//! ```sh
//! cargo run --release --example synth -- --size 1G --out big.pcap --keylog big.keys [--seed N]
//!     [--concurrency N]   # connections open at once (default 64)
//! ```
//!
//! Prints on stdout, as JSON, what misdirect with the key log (and tshark) should find: the
//! connections, TLS connections and their SNIs, requests and 421s. See `gen.rs` for what
//! the traffic looks like.

mod gen;

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => bail!("size unit must be K, M or G: {s}"),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: f64 = num.parse().with_context(|| format!("bad size {s}"))?;
    Ok((n * mult as f64) as u64)
}

fn main() -> Result<()> {
    let mut size = 1u64 << 30;
    let mut out: Option<PathBuf> = None;
    let mut keylog: Option<PathBuf> = None;
    let mut seed = 1u64;
    let mut concurrency = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--size" => size = parse_size(&value()?)?,
            "--out" => out = Some(value()?.into()),
            "--keylog" => keylog = Some(value()?.into()),
            "--seed" => seed = value()?.parse().context("bad seed")?,
            "--concurrency" => concurrency = value()?.parse().context("bad concurrency")?,
            "-h" | "--help" => {
                println!("synth --size SIZE[K|M|G] --out FILE.pcap --keylog FILE.keys [--seed N] [--concurrency N]");
                return Ok(());
            }
            _ => bail!("unknown argument {a}"),
        }
    }
    let (Some(out), Some(keylog)) = (out, keylog) else {
        bail!("--out and --keylog are required");
    };
    let pcap = BufWriter::with_capacity(1 << 20, File::create(&out).context("--out")?);
    let keys = BufWriter::new(File::create(&keylog).context("--keylog")?);
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let cfg = gen::Config {
        concurrency,
        ..gen::Config::new(size, seed)
    };
    let expect = gen::synthesize(&cfg, pcap, keys)?;
    println!("{}", serde_json::to_string_pretty(&expect)?);
    Ok(())
}
