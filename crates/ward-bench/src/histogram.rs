//! A fixed-size latency histogram: recording is an index computation and an increment.
//!
//! Buckets are log-linear (each power of two split into 128 steps), so any latency from
//! a nanosecond to centuries is kept within 1% without growing memory during a run.

use std::time::Duration;

const SUB_BITS: u32 = 7;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Values below `SUB_COUNT` get a bucket each; every higher power of two gets `SUB_COUNT`.
const BUCKET_COUNT: usize = SUB_COUNT + (64 - SUB_BITS as usize) * SUB_COUNT;

/// Latencies in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKET_COUNT].into_boxed_slice(),
            count: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(ns)] += 1;
        self.count += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds every recording of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Number of recordings.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latency below which a fraction `q` (0..=1) of recordings fall, within 1%.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max();
        }
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let ns = bucket_middle(index).clamp(self.min_ns, self.max_ns);
                return Some(Duration::from_nanos(ns));
            }
        }
        Some(Duration::from_nanos(self.max_ns))
    }

    /// The largest latency recorded, exactly.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_nanos(self.max_ns))
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUB_COUNT as u64 {
        return ns as usize;
    }
    let exponent = 63 - ns.leading_zeros();
    let sub = (ns >> (exponent - SUB_BITS)) as usize & (SUB_COUNT - 1);
    SUB_COUNT + (exponent - SUB_BITS) as usize * SUB_COUNT + sub
}

fn bucket_middle(index: usize) -> u64 {
    if index < SUB_COUNT {
        return index as u64;
    }
    let shift = ((index - SUB_COUNT) / SUB_COUNT) as u32;
    let sub = ((index - SUB_COUNT) % SUB_COUNT) as u64;
    let low = (SUB_COUNT as u64 + sub) << shift;
    low + ((1u64 << shift) >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_one_percent(got: Duration, want_ns: u64) -> bool {
        let got = got.as_nanos() as f64;
        (got - want_ns as f64).abs() <= want_ns as f64 * 0.01
    }

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = Histogram::default();
        for ns in 1..=100_000u64 {
            h.record(Duration::from_nanos(ns * 1000));
        }
        for (q, want_ns) in [
            (0.5, 50_000_000),
            (0.9, 90_000_000),
            (0.99, 99_000_000),
            (1.0, 100_000_000),
        ] {
            let got = h.quantile(q).unwrap();
            assert!(
                within_one_percent(got, want_ns),
                "q {q}: {got:?} vs {want_ns} ns"
            );
        }
        assert_eq!(h.max(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn small_values_are_exact_and_extremes_do_not_overflow() {
        let mut h = Histogram::default();
        for _ in 0..5 {
            h.record(Duration::from_nanos(5));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_nanos(5)));
        h.record(Duration::MAX);
        assert_eq!(h.quantile(1.0), Some(Duration::from_nanos(u64::MAX)));
        assert_eq!(h.count(), 6);
    }

    #[test]
    fn every_bucket_middle_maps_back_to_its_bucket() {
        for index in 0..BUCKET_COUNT {
            assert_eq!(bucket_of(bucket_middle(index)), index, "bucket {index}");
        }
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for ns in 0..10_000u64 {
            let latency = Duration::from_nanos(ns * 37 % 9_973 * 1_000);
            if ns % 3 == 0 { &mut a } else { &mut b }.record(latency);
            all.record(latency);
        }
        a.merge(&b);
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
        assert_eq!(a.count(), all.count());
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
