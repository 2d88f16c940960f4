//! 7z archives.

use crate::{Analyzer, Format, Scan, Source};

/// 7z archives.
pub struct SevenZipAnalyzer;

impl Analyzer for SevenZipAnalyzer {
    fn format(&self) -> Format {
        Format::SevenZip
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}
