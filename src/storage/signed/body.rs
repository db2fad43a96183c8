//! The body of a verified PUT: its length and digests, checked while it streams.

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{VerifiedPut, VerifyError};

impl VerifiedPut<'_> {
    /// Checks the request's `Content-MD5` header against the bound MD5: required and equal
    /// when an MD5 is bound, ignored otherwise.
    pub fn check_content_md5(&self, header: Option<&str>) -> Result<(), VerifyError> {
        let Some(expected) = self.md5 else {
            return Ok(());
        };
        let given = header
            .and_then(crate::checked::decode_md5)
            .ok_or(VerifyError::DigestMismatch)?;
        if crate::crypto::ct_eq(&given, &expected) {
            Ok(())
        } else {
            Err(VerifyError::DigestMismatch)
        }
    }

    /// A checker to feed the body through while storing it: it refuses more bytes than
    /// [`VerifiedPut::size`] as soon as they arrive ([`VerifyError::SizeMismatch`], 413) and,
    /// at the end, fewer bytes ([`VerifyError::Incomplete`], 400) or a body whose digest
    /// differs from the bound SHA-256 or MD5 ([`VerifyError::DigestMismatch`], 400). Keep the
    /// stored file only if [`BodyCheck::finish`] succeeds.
    #[must_use]
    pub fn body_check(&self) -> BodyCheck {
        BodyCheck {
            expected_len: self.size,
            seen: 0,
            sha256: self.sha256.map(|d| (Sha256::new(), d)),
            md5: self.md5.map(|d| (Md5::new(), d)),
        }
    }
}

/// Streaming check of a PUT body against a [`VerifiedPut`].
#[derive(Debug, Clone)]
pub struct BodyCheck {
    expected_len: u64,
    seen: u64,
    sha256: Option<(Sha256, [u8; 32])>,
    md5: Option<(Md5, [u8; 16])>,
}

impl BodyCheck {
    /// Feeds a chunk; fails as soon as the body is longer than declared.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), VerifyError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        if self.seen > self.expected_len {
            return Err(VerifyError::SizeMismatch {
                expected: self.expected_len,
                actual: self.seen,
            });
        }
        if let Some((h, _)) = &mut self.sha256 {
            h.update(chunk);
        }
        if let Some((h, _)) = &mut self.md5 {
            h.update(chunk);
        }
        Ok(())
    }

    /// The number of body bytes seen so far.
    #[must_use]
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Checks the length and the digests once the body is complete.
    pub fn finish(self) -> Result<(), VerifyError> {
        if self.seen != self.expected_len {
            return Err(VerifyError::Incomplete {
                expected: self.expected_len,
                actual: self.seen,
            });
        }
        if let Some((h, d)) = self.sha256 {
            if !crate::crypto::ct_eq(&h.finalize(), &d) {
                return Err(VerifyError::DigestMismatch);
            }
        }
        if let Some((h, d)) = self.md5 {
            if !crate::crypto::ct_eq(&h.finalize(), &d) {
                return Err(VerifyError::DigestMismatch);
            }
        }
        Ok(())
    }
}
