//! Archives and compressed streams: every member is recognised by content and scanned.

pub mod compress;
pub mod sevenz;
pub mod tar;
pub mod zip;
