//! TensorFlow SavedModel graphs: ops that touch files or run Python.

use crate::{Analyzer, Format, Scan, Source};

/// TensorFlow SavedModel graphs: ops that touch files or run Python.
pub struct SavedModelAnalyzer;

impl Analyzer for SavedModelAnalyzer {
    fn format(&self) -> Format {
        Format::SavedModel
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes look like this format.
pub fn sniff(_head: &[u8]) -> bool {
    false
}
