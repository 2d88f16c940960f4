//! safetensors files: header and tensor layout consistency.

use crate::{Analyzer, Format, Scan, Source};

/// safetensors files: header and tensor layout consistency.
pub struct SafetensorsAnalyzer;

impl Analyzer for SafetensorsAnalyzer {
    fn format(&self) -> Format {
        Format::Safetensors
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes look like this format.
pub fn sniff(_head: &[u8]) -> bool {
    false
}
