//! NumPy .npy arrays; object arrays carry pickles.

use crate::{Analyzer, Format, Scan, Source};

/// NumPy .npy arrays; object arrays carry pickles.
pub struct NumpyAnalyzer;

impl Analyzer for NumpyAnalyzer {
    fn format(&self) -> Format {
        Format::Numpy
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}
