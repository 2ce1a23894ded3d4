//! Property: any byte stream, cut into segments that are reordered, duplicated and partially
//! overlapped, with any initial sequence number (so wrap-around is exercised), reassembles to
//! exactly the original bytes, with no gap and one FIN.

use misdirect::anomaly::AnomalyCounts;
use misdirect::flow::{BufferBudget, Ctx, Reassembler, Segment, StreamEvent};
use misdirect::Limits;
use proptest::prelude::*;

/// Segments as (start offset, end offset) covering 0..len, some widened to overlap neighbours,
/// some duplicated, then shuffled.
fn segments(len: usize) -> impl Strategy<Value = Vec<(usize, usize)>> {
    let cuts = proptest::collection::vec(0..=len, 0..24);
    let widen = proptest::collection::vec((0usize..300, 0usize..300, any::<bool>()), 25);
    (cuts, widen).prop_flat_map(move |(mut cuts, widen)| {
        cuts.push(0);
        cuts.push(len);
        cuts.sort_unstable();
        cuts.dedup();
        let mut segs = Vec::new();
        for (w, pair) in cuts.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            let (back, fwd, dup) = widen[w % widen.len()];
            segs.push((a.saturating_sub(back), (b + fwd).min(len)));
            if dup {
                segs.push((a, b));
            }
        }
        Just(segs).prop_shuffle()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_segmentation_reassembles_to_the_original(
        (data, segs) in proptest::collection::vec(any::<u8>(), 1..4000)
            .prop_flat_map(|d| { let n = d.len(); (Just(d), segments(n)) }),
        isn in any::<u32>(),
    ) {
        let limits = Limits::default();
        let mut budget = BufferBudget { used: 0, max: limits.max_ooo_bytes_total };
        let mut anomalies = AnomalyCounts::default();
        let mut r = Reassembler::default();
        r.syn(isn);
        let mut got = Vec::new();
        let mut gaps = 0u64;
        let mut fins = 0;
        let mut collect = |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data(d) => got.extend_from_slice(d),
            StreamEvent::Gap(n) => gaps += n,
            StreamEvent::Fin => fins += 1,
            StreamEvent::Rst => {}
        };
        let last = segs.iter().map(|s| s.1).max().unwrap_or(0);
        for &(a, b) in &segs {
            let mut ctx = Ctx { now: misdirect::Timestamp(0), limits: &limits, budget: &mut budget, anomalies: &mut anomalies };
            let seg = Segment {
                seq: isn.wrapping_add(1).wrapping_add(a as u32),
                payload: &data[a..b],
                missing: 0,
                fin: b == data.len() && b == last,
            };
            r.segment(seg, &mut ctx, &mut collect);
        }
        r.flush(&mut budget, &mut collect);
        prop_assert_eq!(gaps, 0);
        prop_assert_eq!(fins, 1);
        prop_assert!(got == data, "reassembled bytes differ");
        prop_assert_eq!(budget.used, 0, "buffer budget not returned");
        prop_assert!(anomalies.is_empty(), "{:?}", anomalies);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// With limits so small that holes must be given up, every delivered byte still sits at its
    /// true offset, data plus gaps cover the stream exactly once, and the budget is returned.
    #[test]
    fn tiny_limits_degrade_to_gaps_never_to_wrong_bytes(
        (data, segs) in proptest::collection::vec(any::<u8>(), 1..3000)
            .prop_flat_map(|d| { let n = d.len(); (Just(d), segments(n)) }),
        isn in any::<u32>(),
        per_dir in 1usize..800,
        max_segs in 1usize..6,
        total in 1usize..1500,
    ) {
        let limits = Limits {
            max_ooo_bytes_per_direction: per_dir,
            max_ooo_segments_per_direction: max_segs,
            ..Limits::default()
        };
        let mut budget = BufferBudget { used: 0, max: total };
        let mut anomalies = AnomalyCounts::default();
        let mut r = Reassembler::default();
        r.syn(isn);
        let mut offset = 0usize;
        let mut ok = true;
        let mut check = |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data(d) => {
                ok &= data.get(offset..offset + d.len()) == Some(d);
                offset += d.len();
            }
            StreamEvent::Gap(n) => offset += n as usize,
            _ => {}
        };
        for &(a, b) in &segs {
            let mut ctx = Ctx { now: misdirect::Timestamp(0), limits: &limits, budget: &mut budget, anomalies: &mut anomalies };
            let seg = Segment {
                seq: isn.wrapping_add(1).wrapping_add(a as u32),
                payload: &data[a..b],
                missing: 0,
                fin: false,
            };
            r.segment(seg, &mut ctx, &mut check);
            prop_assert!(r.buffered() <= per_dir);
            prop_assert!(budget.used <= total);
        }
        r.flush(&mut budget, &mut check);
        prop_assert!(ok, "a byte was delivered at the wrong offset");
        prop_assert_eq!(offset, data.len());
        prop_assert_eq!(budget.used, 0);
    }
}
