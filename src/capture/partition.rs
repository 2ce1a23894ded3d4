//! Which inputs are analysed together: the partitioning rule of `docs/scale-out.md`.
//!
//! Contract: [`partitions`] turns command-line paths into groups of inputs, each one
//! capture (its files merged by time) analysed independently of the others:
//! - the files named on the command line (and `-`) together form one partition, in the order
//!   given: rotated files of one link;
//! - a directory yields one partition per capture file directly in it, and one per
//!   subdirectory, holding every capture file below that subdirectory (one link's rotated
//!   files, kept together so a connection crossing a file boundary is seen whole).
//!
//! In a directory, capture files are told by their first four bytes (pcap or pcapng magic),
//! not their names; other files (key logs, notes) and hidden entries are skipped. Entries are
//! taken in byte order of their names, so the partitions, and the merged report, are the same
//! on every machine.

use super::InputName;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why the inputs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("cannot read directory {path}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no pcap or pcapng file in this directory")]
    NoCaptures { path: PathBuf },
}

/// The partitions of `args` (command-line inputs), in order: the named files first (when
/// any), then each directory's partitions in argument order.
pub fn partitions(args: &[InputName]) -> Result<Vec<Vec<InputName>>, PartitionError> {
    let mut files = Vec::new();
    let mut groups = Vec::new();
    for arg in args {
        match arg {
            InputName::Path(p) if p.is_dir() => {
                let before = groups.len();
                for entry in entries(p)? {
                    if entry.is_dir() {
                        let mut below = Vec::new();
                        captures_below(&entry, &mut below)?;
                        if !below.is_empty() {
                            groups.push(below.into_iter().map(InputName::Path).collect());
                        }
                    } else if is_capture(&entry) {
                        groups.push(vec![InputName::Path(entry)]);
                    }
                }
                if groups.len() == before {
                    return Err(PartitionError::NoCaptures { path: p.clone() });
                }
            }
            other => files.push(other.clone()),
        }
    }
    if !files.is_empty() {
        groups.insert(0, files);
    }
    Ok(groups)
}

/// Visible entries of `dir`, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, PartitionError> {
    let err = |source| PartitionError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if !entry.file_name().as_encoded_bytes().starts_with(b".") {
            out.push(entry.path());
        }
    }
    out.sort_unstable_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    Ok(out)
}

/// Capture files anywhere below `dir`, in name order, depth first.
fn captures_below(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PartitionError> {
    for entry in entries(dir)? {
        if entry.is_dir() {
            captures_below(&entry, out)?;
        } else if is_capture(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Whether a file starts like one [`super::file::FileSource`] opens.
fn is_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok() && super::file::MAGICS.contains(&u32::from_le_bytes(magic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_split_files_and_subdirectories() {
        let dir = std::env::temp_dir().join(format!("misdirect-partition-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("link1/day2")).unwrap();
        let pcap = 0xa1b2_c3d4u32.to_le_bytes();
        let pcapng = 0x0a0d_0d0au32.to_le_bytes();
        let modified = 0xa1b2_cd34u32.to_le_bytes();
        for (name, bytes) in [
            ("b.pcap", &pcap[..]),
            ("c.pcap", &modified[..]),
            ("a.pcapng", &pcapng[..]),
            ("a.keys", b"CLIENT_RANDOM"),
            (".hidden.pcap", &pcap[..]),
            ("link1/x-2.pcap", &pcap[..]),
            ("link1/x-1.pcap", &pcap[..]),
            ("link1/day2/x-3.pcap", &pcap[..]),
        ] {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let names = |g: &Vec<InputName>| -> Vec<String> {
            g.iter()
                .map(|i| {
                    i.display()
                        .trim_start_matches(&*dir.display().to_string())
                        .to_string()
                })
                .collect()
        };
        let got = partitions(&[
            InputName::Path("one.pcap".into()),
            InputName::Path(dir.clone()),
            InputName::Stdin,
        ])
        .unwrap();
        let got: Vec<Vec<String>> = got.iter().map(names).collect();
        assert_eq!(
            got,
            [
                vec!["one.pcap", "<stdin>"],
                vec!["/a.pcapng"],
                vec!["/b.pcap"],
                vec!["/c.pcap"],
                vec!["/link1/day2/x-3.pcap", "/link1/x-1.pcap", "/link1/x-2.pcap"],
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
