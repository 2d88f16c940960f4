//! Fuzz target `zip`: see ward_scan_fuzz::TARGETS for the formats it accepts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| -> libfuzzer_sys::Corpus {
    if ward_scan_fuzz::run("zip", data).is_some() {
        libfuzzer_sys::Corpus::Keep
    } else {
        libfuzzer_sys::Corpus::Reject
    }
});
