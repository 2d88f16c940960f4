//! Tar archives, including the legacy PyTorch tar format.

use crate::{Analyzer, Format, Scan, Source};

/// Tar archives, including the legacy PyTorch tar format.
pub struct TarAnalyzer;

impl Analyzer for TarAnalyzer {
    fn format(&self) -> Format {
        Format::Tar
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}
