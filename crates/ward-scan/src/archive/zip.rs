//! Zip archives, read the way Python's zipfile and PyTorch read them.

use crate::{Analyzer, Format, Scan, Source};

/// Zip archives, read the way Python's zipfile and PyTorch read them.
pub struct ZipAnalyzer;

impl Analyzer for ZipAnalyzer {
    fn format(&self) -> Format {
        Format::Zip
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether a zip end-of-central-directory record sits at the end of `src`.
pub fn has_central_directory(_src: &mut dyn Source) -> bool {
    false
}
