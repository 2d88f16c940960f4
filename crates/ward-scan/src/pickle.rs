//! Symbolic analysis of pickle streams, protocols 0-5; nothing is ever executed.

use crate::{Analyzer, Format, Scan, Source};

/// Symbolic analysis of pickle streams, protocols 0-5; nothing is ever executed.
pub struct PickleAnalyzer;

impl Analyzer for PickleAnalyzer {
    fn format(&self) -> Format {
        Format::Pickle
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes look like this format.
pub fn sniff(_head: &[u8]) -> bool {
    false
}
