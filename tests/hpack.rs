//! Conformance of the passive HPACK decoder (`proto::http::http2::hpack`) against RFC 7541
//! Appendix C and the public hpack-test-case stories, plus the observer's own promise: a
//! field this observer cannot resolve comes out as [`Field::Unknown`], never as a guess.
//!
//! Only the public API is used. Where the RFC states the dynamic table's contents, they are
//! read back by decoding indexed fields (§6.1) at 62, 63, ... on a replayed decoder until the
//! index is refused (see [`dynamic_table`]); the table size in bytes is then the RFC §4.1 sum.
//!
//! Story data: `tests/data/hpack/stories/` (origin and licence in its README.md). Setting
//! `HPACK_TEST_CASE_DIR` to a checkout of https://github.com/http2jp/hpack-test-case runs the
//! same checks over every story there as well.

use misdirect::proto::http::http2::hpack::{Decoder, Field, HpackError};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A decoded field: `Some((name, value))` for [`Field::Known`], `None` for [`Field::Unknown`].
type Out = Option<(Vec<u8>, Vec<u8>)>;

/// The observer's memory cap for the conformance runs: above any table size used here, so
/// the cap never decides anything.
const CAP: usize = 1 << 16;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len() % 2 == 0, "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<Out>, HpackError> {
    let mut out = Vec::new();
    d.decode(block, &mut |f| {
        out.push(match f {
            Field::Known { name, value } => Some((name.to_vec(), value.to_vec())),
            Field::Unknown => None,
        })
    })?;
    Ok(out)
}

fn known(fields: &[(&str, &str)]) -> Vec<Out> {
    fields
        .iter()
        .map(|(n, v)| Some((n.as_bytes().to_vec(), v.as_bytes().to_vec())))
        .collect()
}

fn show(fields: &[Out]) -> Vec<String> {
    fields
        .iter()
        .map(|f| match f {
            Some((n, v)) => format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            ),
            None => "<unknown>".to_string(),
        })
        .collect()
}

/// An indexed header field (§6.1) for `index`: pattern bit 1, then a 7-bit-prefix integer
/// (§5.1).
fn indexed_field(index: usize) -> Vec<u8> {
    if index < 127 {
        return vec![0x80 | index as u8];
    }
    let mut out = vec![0xff];
    let mut rest = index - 127;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// The dynamic table (newest first, index 62 first) of a synchronised decoder after
/// `setup` and `blocks`. Each probe replays everything on a fresh decoder, so the probe
/// never depends on what an earlier probe did to the decoder (a refused index
/// desynchronises it). A synchronised decoder must refuse the first index past its table
/// (§2.3.3), which is what ends the walk.
fn dynamic_table(setup: &dyn Fn(&mut Decoder), blocks: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for index in 62.. {
        let mut d = Decoder::new(false, CAP);
        setup(&mut d);
        for b in blocks {
            decode(&mut d, b).expect("replayed block decodes");
        }
        match decode(&mut d, &indexed_field(index)) {
            Ok(f) => match f.as_slice() {
                [Some((n, v))] => entries.push((
                    String::from_utf8(n.clone()).expect("utf-8 name"),
                    String::from_utf8(v.clone()).expect("utf-8 value"),
                )),
                other => panic!("index {index}: expected one known field, got {other:?}"),
            },
            Err(HpackError::BadIndex) => break,
            Err(e) => panic!("index {index}: unexpected {e}"),
        }
    }
    entries
}

/// RFC 7541 §4.1: name and value lengths plus 32 per entry.
fn table_size(entries: &[(String, String)]) -> usize {
    entries.iter().map(|(n, v)| n.len() + v.len() + 32).sum()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// One header block of an RFC example: the fields it decodes to and the dynamic table
/// (newest first) and its size in bytes afterwards, as Appendix C states them.
struct Step {
    block: &'static str,
    fields: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

/// Decodes the steps in order on one decoder, checking fields, table and size after each.
fn run_rfc(setup: &dyn Fn(&mut Decoder), steps: &[Step]) {
    let mut d = Decoder::new(false, CAP);
    setup(&mut d);
    let mut blocks = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let block = hex(step.block);
        let got = decode(&mut d, &block).unwrap_or_else(|e| panic!("step {i}: {e}"));
        assert_eq!(show(&got), show(&known(step.fields)), "step {i}: fields");
        blocks.push(block);
        let table = dynamic_table(setup, &blocks);
        assert_eq!(table, pairs(step.table), "step {i}: dynamic table");
        assert_eq!(table_size(&table), step.size, "step {i}: table size");
    }
    assert_eq!(d.unknown_fields, 0);
    assert!(!d.is_uncertain());
}

fn no_setup(_: &mut Decoder) {}

// ---------------------------------------------------------------- C.2: one representation each

/// C.2.1: literal header field with indexing, new name.
#[test]
fn rfc_c2_1_literal_with_indexing() {
    run_rfc(
        &no_setup,
        &[Step {
            block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            fields: &[("custom-key", "custom-header")],
            table: &[("custom-key", "custom-header")],
            size: 55,
        }],
    );
}

/// C.2.2: literal header field without indexing, indexed name.
#[test]
fn rfc_c2_2_literal_without_indexing() {
    run_rfc(
        &no_setup,
        &[Step {
            block: "040c 2f73 616d 706c 652f 7061 7468",
            fields: &[(":path", "/sample/path")],
            table: &[],
            size: 0,
        }],
    );
}

/// C.2.3: literal header field never indexed, new name.
#[test]
fn rfc_c2_3_literal_never_indexed() {
    run_rfc(
        &no_setup,
        &[Step {
            block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
            fields: &[("password", "secret")],
            table: &[],
            size: 0,
        }],
    );
}

/// C.2.4: indexed header field (static table).
#[test]
fn rfc_c2_4_indexed_field() {
    run_rfc(
        &no_setup,
        &[Step {
            block: "82",
            fields: &[(":method", "GET")],
            table: &[],
            size: 0,
        }],
    );
}

// ---------------------------------------------------------------- C.3 / C.4: requests

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_TABLE1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_TABLE2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_TABLE3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

fn request_steps(blocks: [&'static str; 3]) -> [Step; 3] {
    [
        Step {
            block: blocks[0],
            fields: REQ1,
            table: REQ_TABLE1,
            size: 57,
        },
        Step {
            block: blocks[1],
            fields: REQ2,
            table: REQ_TABLE2,
            size: 110,
        },
        Step {
            block: blocks[2],
            fields: REQ3,
            table: REQ_TABLE3,
            size: 164,
        },
    ]
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

/// C.3: three requests without Huffman coding sharing one dynamic table.
#[test]
fn rfc_c3_requests_without_huffman() {
    run_rfc(&no_setup, &request_steps(C3));
}

/// C.4: the same requests with Huffman coding.
#[test]
fn rfc_c4_requests_with_huffman() {
    run_rfc(&no_setup, &request_steps(C4));
}

// ---------------------------------------------------------------- C.5 / C.6: responses, 256 bytes

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", LOCATION),
];
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE2),
    ("location", LOCATION),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const RESP_TABLE1: &[(&str, &str)] = &[
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
    (":status", "302"),
];
/// `:status: 302` was evicted to make room for `:status: 307`.
const RESP_TABLE2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", LOCATION),
    ("date", DATE1),
    ("cache-control", "private"),
];
/// Four evictions: `cache-control`, `date` (DATE1), `location`, `:status: 307`.
const RESP_TABLE3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE2),
];

const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a
     3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04
     677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49
     553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
];
const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e
     919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7
     821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed
     4ee5 b106 3d50 07",
];

/// The RFC's C.5 and C.6 decoders run with a 256-byte table: the HTTP/2 endpoint announced
/// SETTINGS_HEADER_TABLE_SIZE = 256 ([`Decoder::set_allowed_size`]), and by RFC 7541 §4.2
/// the encoder must then signal the new maximum with a dynamic table size update at the
/// start of its next header block. The RFC bytes leave that update out (the example simply
/// starts with a 256-byte table), so it is put back in front of the first block:
/// `3f e1 01` is §6.3 `001` + 5-bit-prefix integer 31 + 97 + 1·128 = 256, exactly what an
/// encoder sends. The decoded fields are the RFC's; only the table's maximum comes from it.
const SIZE_UPDATE_256: &str = "3fe101";

fn announce_256(d: &mut Decoder) {
    d.set_allowed_size(256);
}

/// The C.5/C.6 steps, the first block with [`SIZE_UPDATE_256`] in front. `Step::block` is
/// `&'static str`, so that one prefixed block is leaked (a few bytes, once per test).
fn response_steps(blocks: [&'static str; 3]) -> [Step; 3] {
    let first: &'static str =
        Box::leak(format!("{SIZE_UPDATE_256} {}", blocks[0]).into_boxed_str());
    [
        Step {
            block: first,
            fields: RESP1,
            table: RESP_TABLE1,
            size: 222,
        },
        Step {
            block: blocks[1],
            fields: RESP2,
            table: RESP_TABLE2,
            size: 222,
        },
        Step {
            block: blocks[2],
            fields: RESP3,
            table: RESP_TABLE3,
            size: 215,
        },
    ]
}

/// C.5: three responses without Huffman coding, 256-byte table, with evictions.
#[test]
fn rfc_c5_responses_without_huffman() {
    run_rfc(&announce_256, &response_steps(C5));
}

/// C.6: the same responses with Huffman coding.
#[test]
fn rfc_c6_responses_with_huffman() {
    run_rfc(&announce_256, &response_steps(C6));
}

/// Without the size update (an observer that missed the SETTINGS, say) the decoder keeps
/// its 4096-byte table and so keeps entries the RFC's 256-byte table evicted. Keeping too
/// many cannot change what a valid reference resolves to: the fields are the RFC's.
#[test]
fn rfc_c5_c6_without_the_size_update_keep_more_but_decode_the_same() {
    for blocks in [C5, C6] {
        let mut d = Decoder::new(false, CAP);
        let mut replay = Vec::new();
        for (block, fields) in blocks.iter().zip([RESP1, RESP2, RESP3]) {
            let block = hex(block);
            assert_eq!(
                show(&decode(&mut d, &block).expect("decodes")),
                show(&known(fields))
            );
            replay.push(block);
        }
        let table = dynamic_table(&no_setup, &replay);
        assert_eq!(
            table,
            pairs(&[
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE2),
                (":status", "307"),
                ("location", LOCATION),
                ("date", DATE1),
                ("cache-control", "private"),
                (":status", "302"),
            ])
        );
        assert_eq!(table_size(&table), 222 + 42 + 65 + 52 + 98);
    }
}

/// SETTINGS_HEADER_TABLE_SIZE = 256 bounds the encoder's size updates (§4.2, §6.3).
#[test]
fn size_update_is_bounded_by_the_announced_size() {
    let mut d = Decoder::new(false, CAP);
    d.set_allowed_size(256);
    assert_eq!(
        decode(&mut d, &hex("3fe101 82")),
        Ok(known(&[(":method", "GET")]))
    );
    // 257 = 3f e2 01.
    assert_eq!(
        decode(&mut d, &hex("3fe201 82")),
        Err(HpackError::TableSizeTooLarge)
    );
    assert!(d.is_uncertain(), "an error desynchronises");
}

// ---------------------------------------------------------------- observer-specific, on the RFC

/// C.3 seen from its second block on: `be` (62) was inserted by the unseen first block, so
/// `:authority` is unknown; everything else resolves, and the third block's `bf` (63, the
/// same unseen entry, pushed down by one) is unknown too while the entry inserted by the
/// second block is known at 62.
#[test]
fn rfc_c3_from_the_second_block_is_known_or_unknown_never_wrong() {
    for blocks in [C3, C4] {
        let mut d = Decoder::new(true, CAP);
        let mut second = known(REQ2);
        second[3] = None;
        assert_eq!(
            show(&decode(&mut d, &hex(blocks[1])).unwrap()),
            show(&second)
        );
        let mut third = known(REQ3);
        third[3] = None;
        assert_eq!(
            show(&decode(&mut d, &hex(blocks[2])).unwrap()),
            show(&third)
        );
        assert_eq!(d.unknown_fields, 2);
        // The table holds what was seen; beyond it is unknown, not an error.
        assert_eq!(
            decode(&mut d, &hex("be bf c0")).unwrap(),
            vec![
                known(&[("custom-key", "custom-value")]).remove(0),
                known(&[("cache-control", "no-cache")]).remove(0),
                None
            ]
        );
    }
}

/// A malformed block desynchronises the table; the next block's dynamic references are
/// unknown, not errors and not stale values.
#[test]
fn after_a_malformed_block_references_are_unknown() {
    let mut d = Decoder::new(false, CAP);
    assert_eq!(decode(&mut d, &hex(C3[0])), Ok(known(REQ1)));
    // Literal with indexing, name :authority, value of 15 bytes of which 2 arrived.
    assert_eq!(
        decode(&mut d, &hex("41 0f 7777")),
        Err(HpackError::Truncated)
    );
    assert!(d.is_uncertain());
    let mut second = known(REQ2);
    second[3] = None;
    assert_eq!(decode(&mut d, &hex(C3[1])), Ok(second));
}

/// An entry larger than the observer's memory cap, though within the protocol's table, is
/// not kept: a reference to it is unknown (it exists, unseen), and later entries that fit
/// are kept and resolve again.
#[test]
fn an_entry_above_the_memory_cap_is_not_kept() {
    let mut d = Decoder::new(false, 40);
    // Literal with indexing, new name "a", 20-byte value: 1 + 20 + 32 = 53 bytes > 40.
    let value = "x".repeat(20);
    let big = format!("40 0161 14 {}", "78".repeat(20));
    assert_eq!(decode(&mut d, &hex(&big)), Ok(known(&[("a", &value)])));
    assert_eq!(decode(&mut d, &hex("be")), Ok(vec![None]));
    assert!(d.is_uncertain());
    // "c: d" is 34 bytes: kept, at 62; the dropped entry is now 63, still unknown.
    assert_eq!(
        decode(&mut d, &hex("40 0163 0164")),
        Ok(known(&[("c", "d")]))
    );
    let mut out = known(&[("c", "d")]);
    out.push(None);
    assert_eq!(decode(&mut d, &hex("be bf")), Ok(out));
}

// ---------------------------------------------------------------- hpack-test-case stories

struct Case {
    seqno: Option<u64>,
    /// SETTINGS_HEADER_TABLE_SIZE sent by the decoding side and acknowledged just before
    /// this case (hpack-test-case README): the most the encoder may now use.
    header_table_size: Option<u32>,
    wire: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Story {
    /// `<encoder>/story_NN.json`.
    name: String,
    cases: Vec<Case>,
}

/// A story file, or `None` when it holds no encoded cases (upstream's `raw-data/`).
fn load_story(path: &Path, name: String) -> Option<Story> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut cases = Vec::new();
    for case in json["cases"].as_array().expect("cases") {
        let wire = case.get("wire")?.as_str().expect("wire is a string");
        let headers = case["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| {
                let h = h.as_object().expect("header is an object");
                assert_eq!(h.len(), 1, "{name}: one name per header object");
                let (n, v) = h.iter().next().expect("one entry");
                let v = v.as_str().expect("value is a string");
                (n.as_bytes().to_vec(), v.as_bytes().to_vec())
            })
            .collect();
        cases.push(Case {
            seqno: case.get("seqno").map(|s| s.as_u64().expect("seqno")),
            header_table_size: case
                .get("header_table_size")
                .map(|s| u32::try_from(s.as_u64().expect("size")).expect("fits u32")),
            wire: hex(wire),
            headers,
        });
    }
    for (i, c) in cases.iter().enumerate() {
        if let Some(s) = c.seqno {
            assert_eq!(s, i as u64, "{name}: cases are stored in seqno order");
        }
    }
    Some(Story { name, cases })
}

/// Every `<encoder>/story_*.json` under `root`, in name order.
fn stories_in(root: &Path) -> Vec<Story> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut stories = Vec::new();
    for dir in dirs {
        let encoder = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("encoder dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("story_") && n.ends_with(".json")
            })
            .collect();
        files.sort();
        for f in files {
            let name = format!("{encoder}/{}", f.file_name().unwrap().to_string_lossy());
            stories.extend(load_story(&f, name));
        }
    }
    stories
}

fn stored_stories() -> Vec<Story> {
    stories_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hpack/stories"))
}

/// Decodes a story from its first case with one synchronised decoder: every header list
/// must come out exactly (order, names, values), with nothing unknown.
fn check_exact(story: &Story) {
    let mut d = Decoder::new(false, CAP);
    for case in &story.cases {
        if let Some(n) = case.header_table_size {
            d.set_allowed_size(n);
        }
        let got = decode(&mut d, &case.wire)
            .unwrap_or_else(|e| panic!("{} seqno {:?}: {e}", story.name, case.seqno));
        let want: Vec<Out> = case.headers.iter().cloned().map(Some).collect();
        assert_eq!(
            show(&got),
            show(&want),
            "{} seqno {:?}",
            story.name,
            case.seqno
        );
    }
    assert_eq!(d.unknown_fields, 0, "{}", story.name);
    assert!(!d.is_uncertain(), "{}", story.name);
}

#[derive(Default, Debug)]
struct Tally {
    known: usize,
    unknown: usize,
}

/// Decodes `story` from case `start` on with decoder `d`, which must never error and never
/// produce a field other than the expected one: each field is either exactly the expected
/// field or unknown. SETTINGS seen from `start` on are applied, as an observer would.
fn check_never_guessed(story: &Story, start: usize, mut d: Decoder, what: &str) -> Tally {
    let mut tally = Tally::default();
    for case in &story.cases[start..] {
        if let Some(n) = case.header_table_size {
            d.set_allowed_size(n);
        }
        let at = format!("{} ({what}) seqno {:?}", story.name, case.seqno);
        let got = decode(&mut d, &case.wire).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(got.len(), case.headers.len(), "{at}: field count");
        for (i, (g, want)) in got.iter().zip(&case.headers).enumerate() {
            match g {
                Some(g) => {
                    assert_eq!(
                        show(&[Some(g.clone())]),
                        show(&[Some(want.clone())]),
                        "{at}: field {i} is known but wrong"
                    );
                    tally.known += 1;
                }
                None => tally.unknown += 1,
            }
        }
    }
    assert_eq!(
        d.unknown_fields,
        u32::try_from(tally.unknown).unwrap(),
        "{what}: counter"
    );
    tally
}

/// The number of stories and cases stored: pinned so a file that stops parsing, or a
/// truncated copy, cannot silently shrink the run.
const STORED_STORIES: usize = 13;
const STORED_CASES: usize = 75;

#[test]
fn stories_decode_exactly() {
    let stories = stored_stories();
    let cases: usize = stories.iter().map(|s| s.cases.len()).sum();
    assert_eq!(
        (stories.len(), cases),
        (STORED_STORIES, STORED_CASES),
        "stories, cases"
    );
    for story in &stories {
        check_exact(story);
    }
    println!(
        "hpack-test-case: {} stories, {cases} cases decoded exactly",
        stories.len()
    );
}

/// The key property of a passive observer: a capture that starts after the first header
/// block. From the second case on, with a mid-stream decoder, every field is the expected
/// one or unknown; never a wrong value, never an error.
#[test]
fn stories_from_the_second_case_mid_stream_never_guess() {
    let mut total = Tally::default();
    for story in stored_stories().iter().filter(|s| s.cases.len() >= 2) {
        let t = check_never_guessed(story, 1, Decoder::new(true, CAP), "mid-stream from 1");
        if story.name.starts_with("go-hpack/") {
            // That encoder never uses the dynamic table: nothing can be unknown.
            assert_eq!(t.unknown, 0, "{}", story.name);
        }
        total.known += t.known;
        total.unknown += t.unknown;
    }
    println!("mid-stream from case 1: {total:?}");
    // Static-table references and entries inserted after the start must resolve, and the
    // unseen first case must leave something unresolved in the stories that index.
    assert!(total.known > 0 && total.unknown > 0, "{total:?}");
}

/// The same from every later starting case.
#[test]
fn stories_from_every_case_mid_stream_never_guess() {
    let mut total = Tally::default();
    let mut runs = 0;
    for story in &stored_stories() {
        for start in 1..story.cases.len() {
            let what = format!("mid-stream from {start}");
            let t = check_never_guessed(story, start, Decoder::new(true, CAP), &what);
            total.known += t.known;
            total.unknown += t.unknown;
            runs += 1;
        }
    }
    println!("mid-stream from every case: {runs} runs, {total:?}");
}

/// An observer whose memory cap is below the real table keeps only the newest entries;
/// references to the dropped ones are unknown, never errors or wrong values.
#[test]
fn stories_under_a_small_memory_cap_never_guess() {
    for cap in [0, 64, 256, 1024, 2048] {
        let mut total = Tally::default();
        for story in &stored_stories() {
            let what = format!("cap {cap}");
            let t = check_never_guessed(story, 0, Decoder::new(false, cap), &what);
            total.known += t.known;
            total.unknown += t.unknown;
        }
        println!("cap {cap}: {total:?}");
        if cap == 0 {
            assert!(total.unknown > 0, "cap 0 keeps no entry: {total:?}");
        }
    }
}

/// With `HPACK_TEST_CASE_DIR` set to a checkout of http2jp/hpack-test-case, every story in
/// it is checked the same ways (exactly from the start; mid-stream from the second case).
#[test]
fn stories_from_hpack_test_case_dir() {
    let Some(dir) = std::env::var_os("HPACK_TEST_CASE_DIR") else {
        println!("HPACK_TEST_CASE_DIR not set: skipped");
        return;
    };
    let stories = stories_in(Path::new(&dir));
    assert!(!stories.is_empty(), "no story_*.json under {dir:?}");
    let mut cases = 0;
    let mut total = Tally::default();
    for story in &stories {
        check_exact(story);
        cases += story.cases.len();
        if story.cases.len() >= 2 {
            let t = check_never_guessed(story, 1, Decoder::new(true, CAP), "mid-stream from 1");
            total.known += t.known;
            total.unknown += t.unknown;
        }
    }
    println!(
        "{dir:?}: {} stories, {cases} cases exact; mid-stream from 1: {total:?}",
        stories.len()
    );
}
