//! placeholder
#![forbid(unsafe_code)]
#![deny(missing_docs)]
pub mod checked;
pub mod ns;
pub mod stanza;
pub mod storage;
mod xml;
mod crypto;
