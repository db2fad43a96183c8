//! Crate-private cryptographic helpers over RustCrypto's crates: HMAC-SHA256, constant-time
//! comparison, hex (the `hex` crate), and a redacted, zeroized secret holder.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A secret key that never prints itself. It keeps the keyed HMAC state, so each MAC
/// costs a clone instead of two extra compressions.
#[derive(Clone)]
pub(crate) struct SecretKey {
    keyed: HmacSha256,
    len: usize,
}

impl SecretKey {
    pub(crate) fn new(bytes: impl Into<Vec<u8>>) -> Self {
        // The key material is wiped once the keyed state is built (the state itself is
        // wiped on drop by hmac's `zeroize` feature).
        let bytes = Zeroizing::new(bytes.into());
        // HMAC accepts keys of any length; the error arm cannot happen.
        let keyed = match HmacSha256::new_from_slice(&bytes) {
            Ok(mac) => mac,
            Err(_) => HmacSha256::new(&hmac::digest::Key::<HmacSha256>::default()),
        };
        Self {
            keyed,
            len: bytes.len(),
        }
    }

    /// The length of the key material, in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// A fresh MAC keyed with this secret.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// HMAC-SHA256 of the given parts, each fed in order.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// HMAC-SHA256 of a sequence of fields, each prefixed with its length (u64, big-endian),
    /// so that no two different sequences sign the same bytes.
    pub(crate) fn sign_fields(&self, fields: &[&[u8]]) -> [u8; 32] {
        self.fields_mac(fields).finalize().into_bytes().into()
    }

    fn fields_mac(&self, fields: &[&[u8]]) -> HmacSha256 {
        let mut mac = self.mac();
        for f in fields {
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f);
        }
        mac
    }

    /// A sub-key for one purpose, so that one host secret serves several uses without a
    /// signature made for one being valid for another.
    /// 32 bytes of key material for `label`, derived as [`SecretKey::derive`] does; wiped on
    /// drop.
    pub(crate) fn derive_bytes(&self, label: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.sign(&[b"xmpp-upload key derivation\0", label.as_bytes()]))
    }

    pub(crate) fn derive(&self, label: &str) -> SecretKey {
        SecretKey::new(
            self.sign(&[b"xmpp-upload key derivation\0", label.as_bytes()])
                .to_vec(),
        )
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
#[cfg(any(feature = "signed", test))]
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends the lower-case hex of `bytes` (through a stack buffer: `hex::encode` builds its
/// string a `char` at a time).
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let Some(dst) = buf.get_mut(..chunk.len() * 2) else {
            return;
        };
        if hex::encode_to_slice(chunk, dst).is_ok() {
            // Hex digits are ASCII.
            out.push_str(core::str::from_utf8(dst).unwrap_or_default());
        }
    }
}

/// Decodes hex (either case) into exactly `N` bytes.
#[cfg(any(feature = "signed", test))]
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// SHA-256 of some bytes.
#[cfg(any(feature = "s3", all(test, feature = "signed")))]
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        let long: Vec<u8> = (0..=255).collect();
        assert_eq!(hex(&long), hex::encode(&long));
        assert_eq!(unhex::<4>("0001ABff"), Some(b));
        assert_eq!(unhex::<4>("0001abf"), None);
        assert_eq!(unhex::<4>("0001abfg"), None);
    }

    #[test]
    fn ct_eq_checks_length_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let k = SecretKey::new("hunter2");
        assert!(!format!("{k:?}").contains("hunter2"));
    }
}
