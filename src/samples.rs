//! The repository's sample captures (`samples/`), for the unit tests that run on real
//! traffic: each analysed with the key log beside it (`x.keys` for `x.pcap`) when there is
//! one.

use crate::analysis::Report;
use std::path::{Path, PathBuf};

/// Every capture in `samples/`, sorted by name.
pub fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no samples");
    v
}

/// The report of `file`, on one thread, with the default limits.
pub fn report(file: &Path) -> Report {
    let limits = crate::Limits::default();
    let mut keylog = crate::proto::tls::keylog::KeyLog::default();
    if let Ok(keys) = std::fs::read(file.with_extension("keys")) {
        keylog.add(&keys);
    }
    let input = crate::capture::InputName::Path(file.to_path_buf());
    let capture = crate::capture::Capture::open(&[input], &limits).unwrap();
    crate::pipeline::analyze(capture, &limits, keylog, &mut |_| {})
}
