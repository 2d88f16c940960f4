//! ONNX models: external data paths and operator domains.

use crate::{Analyzer, Format, Scan, Source};

/// ONNX models: external data paths and operator domains.
pub struct OnnxAnalyzer;

impl Analyzer for OnnxAnalyzer {
    fn format(&self) -> Format {
        Format::Onnx
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes look like this format.
pub fn sniff(_head: &[u8]) -> bool {
    false
}
