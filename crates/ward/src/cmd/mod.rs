//! One module per subcommand. Each exposes `Args` (clap) and `run`, and keeps
//! to parsing arguments and printing results: the work lives in the libraries.

pub mod admin;
pub mod audit;
pub mod common;
pub mod gate;
pub mod key;
pub mod login;
pub mod pull;
pub mod push;
pub mod scan;
pub mod serve;
pub mod sign;
pub mod verify;
