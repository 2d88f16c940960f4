//! Keras models: H5 files (`model_config` attribute) and v3 `config.json`: Lambda layers and custom objects.

use crate::{Analyzer, Format, Scan, Source};

/// Keras H5 (HDF5) models.
pub struct H5Analyzer;
/// JSON configs (Keras v3 `config.json`, H5 `model_config`).
pub struct JsonConfigAnalyzer;

impl Analyzer for H5Analyzer {
    fn format(&self) -> Format {
        Format::Hdf5
    }

    fn needs_seek(&self) -> bool {
        true
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

impl Analyzer for JsonConfigAnalyzer {
    fn format(&self) -> Format {
        Format::Json
    }

    fn analyse(&self, _src: &mut dyn Source, scan: &mut Scan<'_>) {
        scan.unreadable(None, "not analysed yet");
    }
}

/// Whether the first bytes look like a JSON object.
pub fn sniff_json(_head: &[u8]) -> bool {
    false
}
