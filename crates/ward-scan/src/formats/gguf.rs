//! GGUF models: chat templates that reach Python internals.

use crate::{Analyzer, Format, Scan, Source};

/// GGUF models: chat templates that reach Python internals.
pub struct GgufAnalyzer;

impl Analyzer for GgufAnalyzer {
    fn format(&self) -> Format {
        Format::Gguf
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}
