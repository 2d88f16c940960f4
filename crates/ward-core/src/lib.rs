//! ward-core: the vocabulary every other Ward crate speaks.
//!
//! Digests ([`Digest`]), repository names, tags and references
//! ([`name::RepositoryName`], [`name::Tag`], [`name::Reference`]), media types,
//! manifest parsing and validation ([`manifest::parse`]), limits
//! ([`limits::Limits`]) and the registry's error codes ([`error::ErrorCode`]).
//!
//! The design decision a reader must know: **this crate does no I/O**.
//! Everything here is a pure function of its input, so every parser of hostile
//! input can be tested and fuzzed without a server.
//!
//! ```
//! use ward_core::digest::Digest;
//! use ward_core::name::Reference;
//!
//! let d = Digest::of(b"hello");
//! assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
//! assert!(matches!(Reference::parse("v1.0"), Ok(Reference::Tag(_))));
//! ```
#![deny(missing_docs)]

pub mod digest;
pub mod error;
pub mod limits;
pub mod manifest;
pub mod media;
pub mod name;

pub use digest::Digest;
pub use error::ErrorCode;
pub use limits::Limits;
