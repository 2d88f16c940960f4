//! ward-scan: placeholder, filled in by its issue.
#![deny(missing_docs)]
