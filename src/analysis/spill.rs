//! The spill: finished connection records on a temporary file, read back in first-packet
//! order.
//!
//! Contract: [`Spill::put`] takes records in any order and encodes them at once
//! (`analysis::codec`); every [`RUN_BYTES`] of them are sorted by first packet and written
//! as one run. [`Merge`] reads the runs of one or more spills (the threads of one capture)
//! back as one stream in first-packet order, holding one record and one read buffer of
//! [`READ_BYTES`] per run; past [`MAX_FAN_IN`] runs, groups of them are first merged into
//! longer runs, so what the merge holds stays bounded however many runs there are.
//!
//! Why: a record is kept from its connection's end to the report's, and the report is
//! written at the end of the run; on a file, the records cost no memory meanwhile, whatever
//! the capture's size. A record on the file is its first packet (8 bytes, little-endian),
//! the length of its encoding (8 bytes) and the encoding, so runs merge by their keys
//! without decoding.
//!
//! The file is made unlinked (`tempfile::tempfile`, in the directory `TMPDIR` names): it is
//! gone when the spill is, even when the process is killed. When no file can be made or
//! written, runs stay in memory, encoded (a quarter to a third of a record's size in
//! memory), and [`Spill::trouble`] says why: the analysis goes on.

use super::codec::{self, CodecError};
use super::{ConnectionRecord, Dialects};
use crate::flow::ConnId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Encoded records gathered before they are sorted and written as a run.
pub const RUN_BYTES: usize = 1 << 20;

/// Bytes a run is written in at a time, in order from the gathered records.
const WRITE_BYTES: usize = 64 << 10;

/// Bytes read from the file at a time for one run while merging.
pub const READ_BYTES: usize = 64 << 10;

/// Runs merged at once; more are merged in groups first.
pub const MAX_FAN_IN: usize = 64;

/// A record's key and length on the file.
const HEADER: usize = 16;

/// Why records read back from a spill could not be.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("cannot read the spilled records back: {0}")]
    Io(#[from] io::Error),
    /// The file holds what its writer never wrote (a failing disk).
    #[error("spilled records are damaged: {0}")]
    Damaged(String),
}

impl From<CodecError> for SpillError {
    fn from(e: CodecError) -> Self {
        SpillError::Damaged(e.to_string())
    }
}

/// One owner's finished records, in runs sorted by first packet.
pub struct Spill {
    file: SpillFile,
    /// The run being gathered, and for each record in it its key and place there.
    gathering: Vec<u8>,
    index: Vec<(u64, usize, usize)>,
    runs: Vec<Run>,
    records: u64,
    /// [`RUN_BYTES`], but in tests.
    run_bytes: usize,
}

/// The temporary file runs are written to, made at the first run.
#[derive(Default)]
struct SpillFile {
    file: Option<Arc<File>>,
    /// Bytes written to it.
    end: u64,
    /// Why runs are kept in memory, once they are.
    trouble: Option<String>,
}

/// A sorted run: where its bytes are.
#[derive(Clone)]
pub struct Run(Place);

#[derive(Clone)]
enum Place {
    File { file: Arc<File>, at: u64, len: u64 },
    Memory(Arc<[u8]>),
}

impl Default for Spill {
    fn default() -> Self {
        Spill {
            file: SpillFile::default(),
            gathering: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
            records: 0,
            run_bytes: RUN_BYTES,
        }
    }
}

impl Spill {
    pub fn new() -> Self {
        Spill::default()
    }

    /// Records put so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn put(&mut self, record: &ConnectionRecord) {
        if self.gathering.capacity() == 0 {
            // Room for a run and the record that ends it: the buffer is not doubled.
            self.gathering.reserve_exact(self.run_bytes + WRITE_BYTES);
        }
        let start = self.gathering.len();
        self.gathering
            .extend_from_slice(&record.first_packet.to_le_bytes());
        self.gathering.extend_from_slice(&[0; 8]);
        codec::put_record(record, &mut self.gathering);
        let len = (self.gathering.len() - start - HEADER) as u64;
        if let Some(field) = self.gathering.get_mut(start + 8..start + HEADER) {
            field.copy_from_slice(&len.to_le_bytes());
        }
        self.index
            .push((record.first_packet, start, self.gathering.len()));
        self.records += 1;
        if self.gathering.len() >= self.run_bytes {
            self.seal();
        }
    }

    /// Sorts the run gathered and writes it out.
    fn seal(&mut self) {
        if self.index.is_empty() {
            return;
        }
        // A packet opens at most one connection: keys are unique, the order total.
        self.index.sort_unstable_by_key(|&(key, _, _)| key);
        let mut w = RunWriter::new(&mut self.file);
        for &(_, start, end) in &self.index {
            w.push(self.gathering.get(start..end).unwrap_or_default());
        }
        self.runs.extend(w.finish());
        self.gathering.clear();
        self.index.clear();
    }

    /// The sorted runs, the one being gathered sealed, and why some are in memory when
    /// they are.
    fn into_runs(mut self) -> (Vec<Run>, Option<String>) {
        self.seal();
        (self.runs, self.file.trouble)
    }
}

/// A run being written: to the file a piece at a time, or, once that fails, to memory. A
/// run whose writing failed halfway is two runs, each sorted.
struct RunWriter<'f> {
    file: &'f mut SpillFile,
    runs: Vec<Run>,
    piece: Vec<u8>,
    /// Where on the file the run began, and its bytes written there.
    at: u64,
    written: u64,
    memory: Option<Vec<u8>>,
}

impl<'f> RunWriter<'f> {
    fn new(file: &'f mut SpillFile) -> Self {
        if file.trouble.is_none() && file.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => file.file = Some(Arc::new(f)),
                Err(e) => file.trouble = Some(format!("cannot make a temporary file: {e}")),
            }
        }
        let memory = file.trouble.is_some().then(Vec::new);
        RunWriter {
            at: file.end,
            file,
            runs: Vec::new(),
            piece: Vec::new(),
            written: 0,
            memory,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        match &mut self.memory {
            Some(m) => m.extend_from_slice(bytes),
            None => {
                self.piece.extend_from_slice(bytes);
                if self.piece.len() >= WRITE_BYTES {
                    self.flush();
                }
            }
        }
    }

    fn flush(&mut self) {
        let (None, Some(file)) = (&self.memory, &self.file.file) else {
            return;
        };
        match file.write_all_at(&self.piece, self.file.end) {
            Ok(()) => {
                self.file.end += self.piece.len() as u64;
                self.written += self.piece.len() as u64;
                self.piece.clear();
            }
            Err(e) => {
                self.file.trouble = Some(format!("cannot write the temporary file: {e}"));
                self.end_file_run();
                self.memory = Some(std::mem::take(&mut self.piece));
            }
        }
    }

    /// The part written to the file, as a run of its own.
    fn end_file_run(&mut self) {
        if let (Some(file), true) = (&self.file.file, self.written > 0) {
            self.runs.push(Run(Place::File {
                file: file.clone(),
                at: self.at,
                len: self.written,
            }));
        }
    }

    fn finish(mut self) -> Vec<Run> {
        self.flush();
        match self.memory.take() {
            Some(m) if !m.is_empty() => self.runs.push(Run(Place::Memory(m.into()))),
            Some(_) => {}
            None => self.end_file_run(),
        }
        self.runs
    }
}

/// The runs of several spills, ready to be merged as often as needed: at most
/// [`MAX_FAN_IN`] of them.
#[derive(Clone, Default)]
pub struct Runs {
    runs: Vec<Run>,
    trouble: Option<String>,
}

impl Runs {
    /// The runs of `spills`; past [`MAX_FAN_IN`], groups are merged into longer runs first
    /// (on a file of their own, or in memory when that fails).
    pub fn of(spills: Vec<Spill>) -> Result<Self, SpillError> {
        Runs::with_fan_in(spills, MAX_FAN_IN)
    }

    fn with_fan_in(spills: Vec<Spill>, fan_in: usize) -> Result<Self, SpillError> {
        // A group's merge makes one run, or two when writing it failed halfway.
        let fan_in = fan_in.max(4);
        let mut trouble = None;
        let mut runs = Vec::new();
        for s in spills {
            let (more, why) = s.into_runs();
            runs.extend(more);
            trouble = trouble.or(why);
        }
        while runs.len() > fan_in {
            let mut longer = SpillFile::default();
            let mut merged = Vec::new();
            let mut rest = runs.into_iter();
            loop {
                let group: Vec<Run> = rest.by_ref().take(fan_in).collect();
                if group.is_empty() {
                    break;
                }
                let mut m = Merge::of(group)?;
                let mut w = RunWriter::new(&mut longer);
                while let Some(raw) = m.next_raw()? {
                    w.push(raw);
                }
                merged.extend(w.finish());
            }
            trouble = trouble.or(longer.trouble);
            runs = merged;
        }
        Ok(Runs { runs, trouble })
    }

    /// Their records in first-packet order.
    pub fn merge(&self) -> Result<Merge, SpillError> {
        Merge::of(self.runs.clone())
    }

    /// Why some records were kept in memory instead of on a file, when they were.
    pub fn trouble(&self) -> Option<&str> {
        self.trouble.as_deref()
    }
}

/// Reads one run's records in order, a buffer at a time.
struct RunReader {
    run: Run,
    /// Bytes of the run not read into `buf` yet start here.
    next: u64,
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
}

impl RunReader {
    fn new(run: Run) -> Self {
        RunReader {
            run,
            next: 0,
            buf: Vec::new(),
            start: 0,
        }
    }

    fn len(&self) -> u64 {
        match &self.run.0 {
            Place::File { len, .. } => *len,
            Place::Memory(b) => b.len() as u64,
        }
    }

    /// Makes `n` bytes ready after `start`; false when the run ends first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.buf.len() - self.start >= n {
            return Ok(true);
        }
        self.buf.drain(..self.start);
        self.start = 0;
        let left = self.len() - self.next;
        let want = n.max(READ_BYTES) - self.buf.len();
        let take = usize::try_from(left).map_or(want, |left| left.min(want));
        let old = self.buf.len();
        self.buf.resize(old + take, 0);
        let into = self.buf.get_mut(old..).unwrap_or_default();
        match &self.run.0 {
            Place::File { file, at, .. } => file.read_exact_at(into, at + self.next)?,
            Place::Memory(bytes) => {
                let from = usize::try_from(self.next).unwrap_or(usize::MAX);
                let src = bytes
                    .get(from..from.saturating_add(take))
                    .unwrap_or_default();
                into.copy_from_slice(src);
            }
        }
        self.next += take as u64;
        Ok(self.buf.len() >= n)
    }

    /// The next record's key and encoding, or `None` at the run's end.
    fn next(&mut self) -> Result<Option<(u64, &[u8])>, SpillError> {
        if !self.fill(HEADER)? {
            return match self.buf.len() - self.start {
                0 => Ok(None),
                _ => Err(damaged()),
            };
        }
        let header = self
            .buf
            .get(self.start..self.start + HEADER)
            .ok_or_else(damaged)?;
        let (key, len) = header.split_at(8);
        let key = u64::from_le_bytes(key.try_into().map_err(|_| damaged())?);
        let len = u64::from_le_bytes(len.try_into().map_err(|_| damaged())?);
        // Bounded by the run: `fill` reads no further than its end.
        let len = usize::try_from(len).map_err(|_| damaged())?;
        if !self.fill(HEADER.saturating_add(len))? {
            return Err(damaged());
        }
        let at = self.start;
        self.start += HEADER + len;
        let bytes = self.buf.get(at..self.start).ok_or_else(damaged)?;
        Ok(Some((key, bytes)))
    }
}

fn damaged() -> SpillError {
    SpillError::Damaged("a run ends inside a record".into())
}

/// The records of several spills in first-packet order.
pub struct Merge {
    readers: Vec<RunReader>,
    /// Each run's next record: its key, and its encoding (header included).
    heads: Vec<Vec<u8>>,
    /// The record last taken.
    current: Vec<u8>,
    order: BinaryHeap<Reverse<(u64, usize)>>,
    failed: bool,
}

impl Merge {
    fn of(runs: Vec<Run>) -> Result<Self, SpillError> {
        let mut m = Merge {
            heads: vec![Vec::new(); runs.len()],
            readers: runs.into_iter().map(RunReader::new).collect(),
            current: Vec::new(),
            order: BinaryHeap::new(),
            failed: false,
        };
        for r in 0..m.readers.len() {
            m.advance(r)?;
        }
        Ok(m)
    }

    /// Reads run `r`'s next record into its head.
    fn advance(&mut self, r: usize) -> Result<(), SpillError> {
        let (Some(reader), Some(head)) = (self.readers.get_mut(r), self.heads.get_mut(r)) else {
            return Ok(());
        };
        head.clear();
        if let Some((key, bytes)) = reader.next()? {
            head.extend_from_slice(bytes);
            self.order.push(Reverse((key, r)));
        }
        Ok(())
    }

    /// The next record's bytes on the file (key, length, encoding), in key order.
    fn next_raw(&mut self) -> Result<Option<&[u8]>, SpillError> {
        let Some(Reverse((_, r))) = self.order.pop() else {
            return Ok(None);
        };
        // The head moves out while the run's next record is read into its buffer.
        if let Some(head) = self.heads.get_mut(r) {
            std::mem::swap(head, &mut self.current);
        }
        self.advance(r)?;
        Ok(Some(&self.current))
    }
}

impl Iterator for Merge {
    type Item = Result<Box<ConnectionRecord>, SpillError>;

    /// The next record; after an error, none.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let record = match self.next_raw() {
            Ok(None) => return None,
            Ok(Some(raw)) => {
                let mut encoding = raw.get(HEADER..).unwrap_or_default();
                match codec::take_record(&mut encoding) {
                    Ok(r) if encoding.is_empty() => Ok(Box::new(r)),
                    Ok(_) => Err(damaged()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        };
        self.failed = record.is_err();
        Some(record)
    }
}

/// The connections of a report whose records wait in spills: read back in id order each
/// time a renderer goes through them, numbered and settled as the diagnosis saw them.
#[derive(Clone, Default)]
pub struct Spilled {
    /// One per partition of the capture, in order.
    parts: Vec<SpilledPart>,
    len: u64,
}

#[derive(Clone)]
struct SpilledPart {
    runs: Runs,
    first_id: u64,
    dialects: Arc<Dialects>,
    /// Inputs of the partitions before this one in the report's list.
    inputs_before: u32,
}

impl Spilled {
    pub(super) fn new(runs: Runs, first_id: u64, len: u64, dialects: Arc<Dialects>) -> Self {
        Spilled {
            parts: vec![SpilledPart {
                runs,
                first_id,
                dialects,
                inputs_before: 0,
            }],
            len,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Why some records were kept in memory instead of on a temporary file, when they
    /// were (memory then grows with the capture).
    pub fn trouble(&self) -> Option<&str> {
        self.parts.iter().find_map(|p| p.runs.trouble())
    }

    /// Each connection in id order, as the report lists it, read back.
    pub fn for_each(
        &self,
        f: &mut dyn FnMut(Box<ConnectionRecord>) -> io::Result<()>,
    ) -> Result<(), SpillError> {
        for part in &self.parts {
            for (id, record) in (part.first_id..).zip(part.runs.merge()?) {
                let mut c = record?;
                super::ready(&mut c, ConnId(id), &part.dialects);
                c.source.input = c.source.input.saturating_add(part.inputs_before);
                f(c)?;
            }
        }
        Ok(())
    }

    /// Appends the connections of the next partition, whose inputs follow `inputs_before`
    /// others in the report.
    pub(super) fn append(&mut self, other: Spilled, inputs_before: u32) {
        self.len += other.len;
        self.parts.extend(other.parts.into_iter().map(|mut p| {
            p.inputs_before = p.inputs_before.saturating_add(inputs_before);
            p
        }));
    }
}

impl std::fmt::Debug for Spilled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spilled({} connections)", self.len)
    }
}

/// A list of the connections, read back as it is written.
impl serde::Serialize for Spilled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = s.serialize_seq(usize::try_from(self.len).ok())?;
        let mut failed = None;
        let read = self.for_each(&mut |c| {
            seq.serialize_element(&*c).map_err(|e| {
                let message = e.to_string();
                failed = Some(e);
                io::Error::other(message)
            })
        });
        match (read, failed) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(S::Error::custom(e)),
            (Ok(()), None) => seq.end(),
        }
    }
}

/// Reads `bytes` as a run (fuzzing): each record read back is encoded again and must read
/// back the same. The number of records read before the end or an error.
#[doc(hidden)]
pub fn read_run(bytes: &[u8]) -> usize {
    let Ok(merge) = Merge::of(vec![Run(Place::Memory(bytes.into()))]) else {
        return 0;
    };
    let mut n = 0;
    for record in merge {
        let Ok(r) = record else { break };
        let mut again = Vec::new();
        codec::put_record(&r, &mut again);
        let mut rest = &again[..];
        let back = codec::take_record(&mut rest).map(|b| serde_json::to_string(&b).ok());
        assert!(rest.is_empty(), "a record re-encoded reads back whole");
        assert_eq!(back, Ok(serde_json::to_string(&*r).ok()), "and the same");
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Records;

    /// Records of the samples (all of them, numbered as one list), each with a distinct
    /// first packet.
    fn records() -> Records {
        let mut all = Records::new();
        for file in crate::samples::captures() {
            all.extend(crate::samples::report(&file).connections);
        }
        for (n, c) in all.iter_mut().enumerate() {
            c.first_packet = n as u64 * 7 + 1;
        }
        assert!(all.len() > 50, "{}", all.len());
        all
    }

    fn json(c: &ConnectionRecord) -> String {
        serde_json::to_string(c).unwrap()
    }

    /// `records` put into `spills` spills in a scrambled order, read back through runs
    /// merged `fan_in` at a time: the records in first-packet order, each as it was.
    fn round_trip(records: &Records, spills: usize, run_bytes: usize, fan_in: usize, memory: bool) {
        let mut s: Vec<Spill> = (0..spills)
            .map(|_| {
                let mut s = Spill {
                    run_bytes,
                    ..Spill::default()
                };
                if memory {
                    s.file.trouble = Some("no file in this test".into());
                }
                s
            })
            .collect();
        // A stride coprime with the count visits every record once, out of order.
        let n = records.len();
        let stride = (n / 3..).find(|k| gcd(*k, n) == 1).unwrap();
        for i in 0..n {
            let r = &records[(i * stride) % n];
            s[i % spills].put(r);
        }
        let runs = Runs::with_fan_in(s, fan_in).unwrap();
        assert!(runs.runs.len() <= fan_in.max(4));
        assert_eq!(runs.trouble().is_some(), memory);
        for _ in 0..2 {
            let back: Vec<String> = runs.merge().unwrap().map(|r| json(&r.unwrap())).collect();
            let want: Vec<String> = records.iter().map(|c| json(c)).collect();
            assert!(
                back == want,
                "{spills} spills, runs of {run_bytes} B, fan-in {fan_in}"
            );
        }
    }

    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    #[test]
    fn records_come_back_in_first_packet_order() {
        let records = records();
        round_trip(&records, 1, RUN_BYTES, MAX_FAN_IN, false);
        round_trip(&records, 3, 2000, MAX_FAN_IN, false);
        // Many runs, merged in groups first.
        round_trip(&records, 2, 500, 4, false);
        // No temporary file: runs kept in memory, the same records back.
        round_trip(&records, 2, 500, 4, true);
    }

    /// Writes the seeds of the `spill_records` fuzz target: each sample's records as one
    /// run. `cargo test --release --lib write_spill_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore]
    fn write_spill_fuzz_seeds() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/spill_records");
        std::fs::create_dir_all(&dir).unwrap();
        let records = records();
        for (n, chunk) in records.chunks(4).enumerate() {
            let mut s = Spill::new();
            s.file.trouble = Some("seeds are written from memory".into());
            chunk.iter().for_each(|r| s.put(r));
            for run in s.into_runs().0 {
                if let Run(Place::Memory(bytes)) = run {
                    std::fs::write(dir.join(format!("sample-records-{n:03}")), &bytes[..]).unwrap();
                    assert_eq!(read_run(&bytes), chunk.len());
                }
            }
        }
    }

    /// A file that cannot be written (here: opened for reading): the runs stay in memory,
    /// the records come back all the same, and the trouble is told.
    #[test]
    fn a_file_that_fails_is_told_and_nothing_is_lost() {
        let records = records();
        let mut s = Spill {
            run_bytes: 2000,
            ..Spill::default()
        };
        s.file.file = Some(Arc::new(File::open("/dev/null").unwrap()));
        records.iter().for_each(|r| s.put(r));
        let runs = Runs::of(vec![s]).unwrap();
        let why = runs.trouble().unwrap_or_default();
        assert!(why.contains("cannot write the temporary file"), "{why:?}");
        let back: Vec<String> = runs.merge().unwrap().map(|r| json(&r.unwrap())).collect();
        let want: Vec<String> = records.iter().map(|c| json(c)).collect();
        assert!(back == want);
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_panic() {
        let records = records();
        let mut s = Spill::new();
        for r in records.iter().take(5) {
            s.put(r);
        }
        let mut runs = s.into_runs().0;
        let Some(Run(Place::File { len, .. })) = runs.first_mut() else {
            panic!("the run is on a file")
        };
        *len -= 3;
        let merged: Vec<_> = Merge::of(runs)
            .map(|m| m.collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(merged.last().is_some_and(|r| r.is_err()));
        assert!(merged.iter().filter(|r| r.is_err()).count() == 1);
    }
}
