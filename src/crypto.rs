//! Crate-private cryptographic helpers: HMAC-SHA256, constant-time comparison, hex, and a
//! redacted secret holder.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
        let bytes = bytes.into();
        // HMAC accepts keys of any length; the error arm cannot happen.
        let keyed = match HmacSha256::new_from_slice(&bytes) {
            Ok(mac) => mac,
            Err(_) => HmacSha256::new(&Default::default()),
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
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(digit(b >> 4));
        s.push(digit(b & 0x0f));
    }
    s
}

/// Decodes hex (either case) into exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = nibble(*pair.first()?)?;
        let lo = nibble(*pair.get(1)?)?;
        *o = (hi << 4) | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// SHA-256 of some bytes.
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
