//! The ciphers of XEP-0448 Encrypted File Sharing (ESFS, `urn:xmpp:esfs:0`): AES-128-GCM and
//! AES-256-GCM with the tag appended, and AES-256-CBC with PKCS#7 padding.
//!
//! The `<file>` metadata describes the original file; after decryption the output is cut to
//! its `<size>` (XEP-0448 §4), which [`EsfsDecryptor`] takes as `size`. Both directions
//! stream in constant memory.
//!
//! # Security
//! * GCM authenticates: trust the plaintext only once [`EsfsDecryptor::finish`] reports
//!   [`EsfsFinished::authenticated`]. Until then it is unverified (write it to a temporary
//!   file).
//! * **CBC does not authenticate.** Anyone who can change the file can change the plaintext
//!   in ways that still unpad. Check the metadata's hash of the original file (XEP-0448
//!   makes one REQUIRED) before using a CBC-decrypted file; [`EsfsFinished::authenticated`] is
//!   `false` to remind you.
//! * The key travels in the `<encrypted>` element: it is secret only inside end-to-end
//!   encrypted XML (OMEMO 2 / XEP-0420).
//!
//! ```
//! use xmpp_upload::aesgcm::esfs::{self, EsfsCipher};
//!
//! let (key, iv) = ([1u8; 32], [2u8; 12]);
//! let file = b"The quick brown fox jumps over the lazy dog";
//! let upload = esfs::encrypt(EsfsCipher::Aes256GcmNoPadding, &key, &iv, file)?;
//! assert_eq!(upload.len() as u64, EsfsCipher::Aes256GcmNoPadding.encrypted_len(43).unwrap());
//! // The receiver knows the size from the <file/> metadata.
//! let plain = esfs::decrypt(EsfsCipher::Aes256GcmNoPadding, &key, &iv, &upload, 43)?;
//! assert_eq!(plain, file);
//! # Ok::<(), xmpp_upload::aesgcm::esfs::EsfsError>(())
//! ```

use aes::cipher::array::Array;
use aes::cipher::block_padding::{Padding, Pkcs7};
use aes::cipher::consts::U16;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use aes::{Aes128, Aes256};

use super::gcm::{hold_back, GcmCore, GcmOpen, OpenError, Overflow, TAG_LEN};

type Block = Array<u8, U16>;

/// A cipher of XEP-0448, named on the wire by its URN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EsfsCipher {
    /// `urn:xmpp:ciphers:aes-128-gcm-nopadding:0`: 16-byte key, 12-byte IV, tag appended.
    Aes128GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-gcm-nopadding:0`: 32-byte key, 12-byte IV, tag appended.
    Aes256GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-cbc-pkcs7:0`: 32-byte key, 16-byte IV, PKCS#7 padding, no
    /// authentication (QXmpp's default).
    Aes256CbcPkcs7,
}

impl EsfsCipher {
    /// Every cipher, in the order of the XEP's table.
    pub const ALL: [Self; 3] = [
        Self::Aes128GcmNoPadding,
        Self::Aes256GcmNoPadding,
        Self::Aes256CbcPkcs7,
    ];

    /// The URN of the `cipher` attribute.
    pub const fn urn(self) -> &'static str {
        match self {
            Self::Aes128GcmNoPadding => "urn:xmpp:ciphers:aes-128-gcm-nopadding:0",
            Self::Aes256GcmNoPadding => "urn:xmpp:ciphers:aes-256-gcm-nopadding:0",
            Self::Aes256CbcPkcs7 => "urn:xmpp:ciphers:aes-256-cbc-pkcs7:0",
        }
    }

    /// The cipher a `cipher` attribute names (exact match), if this module knows it.
    ///
    /// ```
    /// use xmpp_upload::aesgcm::esfs::EsfsCipher;
    /// assert_eq!(EsfsCipher::from_urn("urn:xmpp:ciphers:aes-256-cbc-pkcs7:0"), Some(EsfsCipher::Aes256CbcPkcs7));
    /// assert_eq!(EsfsCipher::from_urn("urn:xmpp:ciphers:chacha20:0"), None);
    /// ```
    pub fn from_urn(urn: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.urn() == urn)
    }

    /// The key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128GcmNoPadding => 16,
            Self::Aes256GcmNoPadding | Self::Aes256CbcPkcs7 => 32,
        }
    }

    /// The IV length in bytes.
    pub const fn iv_len(self) -> usize {
        match self {
            Self::Aes128GcmNoPadding | Self::Aes256GcmNoPadding => 12,
            Self::Aes256CbcPkcs7 => 16,
        }
    }

    /// The size of the encrypted file for `plain` bytes of plaintext (the upload slot's
    /// size): plus the 16-byte tag for GCM, rounded up to the next whole block for CBC
    /// (always 1 to 16 bytes of padding). `None` beyond GCM's limit or `u64`.
    pub const fn encrypted_len(self, plain: u64) -> Option<u64> {
        match self {
            Self::Aes128GcmNoPadding | Self::Aes256GcmNoPadding => super::encrypted_len(plain),
            Self::Aes256CbcPkcs7 => match (plain / 16).checked_add(1) {
                Some(blocks) => blocks.checked_mul(16),
                None => None,
            },
        }
    }
}

/// Why ESFS encryption or decryption failed. Never contains key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EsfsError {
    /// The key has the wrong length for the cipher.
    #[error("the key has {got} bytes; the cipher needs {expected}")]
    KeyLength {
        /// What the cipher needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The IV has the wrong length for the cipher.
    #[error("the IV has {got} bytes; the cipher needs {expected}")]
    IvLength {
        /// What the cipher needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// More than GCM's limit of 2^36 − 32 bytes under one key and IV.
    #[error("more data than GCM allows under one key and IV")]
    TooLong,
    /// The GCM tag does not match: wrong key or IV, or a modified or cut file.
    #[error("the authentication tag does not match")]
    TagMismatch,
    /// The file is shorter than one tag (GCM) or one block (CBC).
    #[error("the encrypted file is too short")]
    Truncated,
    /// The CBC ciphertext is not a whole number of 16-byte blocks.
    #[error("the CBC ciphertext is not a whole number of blocks")]
    NotBlockAligned,
    /// The PKCS#7 padding of the last CBC block is invalid (wrong key or a damaged file).
    #[error("invalid PKCS#7 padding")]
    Padding,
    /// The decrypted file is shorter than the size its metadata declares.
    #[error("the decrypted file has {got} bytes; its metadata says {size}")]
    ShorterThanSize {
        /// The size from the metadata.
        size: u64,
        /// The plaintext bytes there were.
        got: u64,
    },
}

impl From<Overflow> for EsfsError {
    fn from(_: Overflow) -> Self {
        EsfsError::TooLong
    }
}

impl From<OpenError> for EsfsError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Truncated => EsfsError::Truncated,
            OpenError::TagMismatch => EsfsError::TagMismatch,
        }
    }
}

fn check_lengths(cipher: EsfsCipher, key: &[u8], iv: &[u8]) -> Result<(), EsfsError> {
    if key.len() != cipher.key_len() {
        return Err(EsfsError::KeyLength {
            expected: cipher.key_len(),
            got: key.len(),
        });
    }
    if iv.len() != cipher.iv_len() {
        return Err(EsfsError::IvLength {
            expected: cipher.iv_len(),
            got: iv.len(),
        });
    }
    Ok(())
}

fn key_error(cipher: EsfsCipher, key: &[u8]) -> EsfsError {
    EsfsError::KeyLength {
        expected: cipher.key_len(),
        got: key.len(),
    }
}

enum EncInner {
    Gcm128(GcmCore<Aes128>),
    Gcm256(GcmCore<Aes256>),
    Cbc {
        enc: cbc::Encryptor<Aes256>,
        /// Plaintext of the block not yet complete.
        held: [u8; 16],
        held_len: usize,
    },
}

/// Streaming ESFS encryption, in constant memory. The output is the file to upload:
/// ciphertext then tag (GCM), or the padded CBC ciphertext.
pub struct EsfsEncryptor {
    inner: EncInner,
    len: u64,
}

impl EsfsEncryptor {
    /// An encryptor for `cipher` with `key` and `iv` of the cipher's lengths
    /// ([`EsfsCipher::key_len`], [`EsfsCipher::iv_len`]). Never reuse a key and IV pair.
    pub fn new(cipher: EsfsCipher, key: &[u8], iv: &[u8]) -> Result<Self, EsfsError> {
        check_lengths(cipher, key, iv)?;
        let inner = match cipher {
            EsfsCipher::Aes128GcmNoPadding => EncInner::Gcm128(GcmCore::new(
                Aes128::new_from_slice(key).map_err(|_| key_error(cipher, key))?,
                iv,
            )),
            EsfsCipher::Aes256GcmNoPadding => EncInner::Gcm256(GcmCore::new(
                Aes256::new_from_slice(key).map_err(|_| key_error(cipher, key))?,
                iv,
            )),
            EsfsCipher::Aes256CbcPkcs7 => EncInner::Cbc {
                enc: cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
                    .map_err(|_| key_error(cipher, key))?,
                held: [0; 16],
                held_len: 0,
            },
        };
        Ok(Self { inner, len: 0 })
    }

    /// Appends the ciphertext of the next plaintext bytes to `out` (for CBC, of every whole
    /// block so far). On error nothing changes.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EsfsError> {
        let start = out.len();
        match &mut self.inner {
            EncInner::Gcm128(core) => gcm_encrypt(core, input, out)?,
            EncInner::Gcm256(core) => gcm_encrypt(core, input, out)?,
            EncInner::Cbc {
                enc,
                held,
                held_len,
            } => {
                let keep = (*held_len + input.len()) % 16;
                hold_back(held, held_len, keep, input, out, |_| true)?;
                if let Some(fresh) = out.get_mut(start..) {
                    let (blocks, _) = Block::slice_as_chunks_mut(fresh);
                    enc.encrypt_blocks(blocks);
                }
            }
        }
        self.len = self.len.saturating_add(input.len() as u64);
        Ok(())
    }

    /// Plaintext bytes taken so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no plaintext was taken yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the end of the file to `out`: the 16-byte tag (GCM) or the last, padded
    /// block (CBC).
    pub fn finish(self, out: &mut Vec<u8>) {
        match self.inner {
            EncInner::Gcm128(core) => out.extend_from_slice(core.tag().as_slice()),
            EncInner::Gcm256(core) => out.extend_from_slice(core.tag().as_slice()),
            EncInner::Cbc {
                mut enc,
                held,
                held_len,
            } => {
                let mut block = Block::from(held);
                Pkcs7::pad(&mut block, held_len);
                enc.encrypt_block(&mut block);
                out.extend_from_slice(&block);
            }
        }
    }
}

fn gcm_encrypt<C>(core: &mut GcmCore<C>, input: &[u8], out: &mut Vec<u8>) -> Result<(), Overflow>
where
    C: aes::cipher::BlockCipherEncrypt + aes::cipher::BlockSizeUser<BlockSize = U16>,
{
    if !core.fits(input.len()) {
        return Err(Overflow);
    }
    let start = out.len();
    out.extend_from_slice(input);
    match out.get_mut(start..) {
        Some(fresh) => core.encrypt(fresh),
        None => Ok(()),
    }
}

impl core::fmt::Debug for EsfsEncryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsfsEncryptor")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

enum DecInner {
    Gcm128(GcmOpen<Aes128>),
    Gcm256(GcmOpen<Aes256>),
    Cbc {
        dec: cbc::Decryptor<Aes256>,
        /// Ciphertext held back: the last block (it carries the padding) or an incomplete one.
        held: [u8; 16],
        held_len: usize,
    },
}

/// Streaming ESFS decryption in constant memory, with the output cut to the metadata's
/// `size`.
///
/// What [`update`](EsfsDecryptor::update) appends is **unverified** until
/// [`finish`](EsfsDecryptor::finish) succeeds (GCM), and never authenticated for CBC: see
/// the [module documentation](self).
pub struct EsfsDecryptor {
    inner: DecInner,
    size: u64,
    /// Plaintext bytes appended to the caller's buffer.
    emitted: u64,
    /// Plaintext bytes decrypted, including any beyond `size`.
    decrypted: u64,
}

/// How an [`EsfsDecryptor`] finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct EsfsFinished {
    len: u64,
    authenticated: bool,
}

impl EsfsFinished {
    /// The plaintext length handed out (the metadata's size).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the cipher authenticated the plaintext (GCM: the tag matched). `false` for
    /// CBC: check the file's hash from its metadata before trusting it.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }
}

impl EsfsDecryptor {
    /// A decryptor for `cipher` with `key` and `iv`, for a file whose metadata says it has
    /// `size` bytes.
    pub fn new(cipher: EsfsCipher, key: &[u8], iv: &[u8], size: u64) -> Result<Self, EsfsError> {
        check_lengths(cipher, key, iv)?;
        let inner = match cipher {
            EsfsCipher::Aes128GcmNoPadding => DecInner::Gcm128(GcmOpen::new(GcmCore::new(
                Aes128::new_from_slice(key).map_err(|_| key_error(cipher, key))?,
                iv,
            ))),
            EsfsCipher::Aes256GcmNoPadding => DecInner::Gcm256(GcmOpen::new(GcmCore::new(
                Aes256::new_from_slice(key).map_err(|_| key_error(cipher, key))?,
                iv,
            ))),
            EsfsCipher::Aes256CbcPkcs7 => DecInner::Cbc {
                dec: cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
                    .map_err(|_| key_error(cipher, key))?,
                held: [0; 16],
                held_len: 0,
            },
        };
        Ok(Self {
            inner,
            size,
            emitted: 0,
            decrypted: 0,
        })
    }

    /// Decrypts the next bytes of the encrypted file and appends the **unverified**
    /// plaintext that is certain so far (up to the metadata's size) to `out`; returns how
    /// many bytes it appended. On error nothing changes.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, EsfsError> {
        let start = out.len();
        let n = match &mut self.inner {
            DecInner::Gcm128(open) => open.update(input, out)?,
            DecInner::Gcm256(open) => open.update(input, out)?,
            DecInner::Cbc {
                dec,
                held,
                held_len,
            } => {
                let total = *held_len + input.len();
                let keep = match total % 16 {
                    0 => 16,
                    r => r,
                };
                let n = hold_back(held, held_len, keep, input, out, |_| true)?;
                if let Some(fresh) = out.get_mut(start..) {
                    let (blocks, _) = Block::slice_as_chunks_mut(fresh);
                    dec.decrypt_blocks(blocks);
                }
                n
            }
        };
        Ok(self.cut(start, n, out))
    }

    /// Keeps at most what the metadata's size still allows of the `n` bytes appended at
    /// `start`.
    fn cut(&mut self, start: usize, n: usize, out: &mut Vec<u8>) -> usize {
        self.decrypted = self.decrypted.saturating_add(n as u64);
        let room = self.size.saturating_sub(self.emitted);
        let keep = usize::try_from(room).map_or(n, |room| room.min(n));
        out.truncate(start.saturating_add(keep));
        self.emitted = self.emitted.saturating_add(keep as u64);
        keep
    }

    /// Ends the file: checks the GCM tag, or decrypts and unpads the last CBC block
    /// (appending its plaintext to `out`), and checks that the file had at least the
    /// metadata's size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<EsfsFinished, EsfsError> {
        let authenticated = match self.inner {
            DecInner::Gcm128(open) => {
                open.finish()?;
                true
            }
            DecInner::Gcm256(open) => {
                open.finish()?;
                true
            }
            DecInner::Cbc {
                mut dec,
                held,
                held_len,
            } => {
                match held_len {
                    0 => return Err(EsfsError::Truncated),
                    16 => {}
                    _ => return Err(EsfsError::NotBlockAligned),
                }
                let mut block = Block::from(held);
                dec.decrypt_block(&mut block);
                let plain = Pkcs7::unpad(&block).map_err(|_| EsfsError::Padding)?;
                let start = out.len();
                out.extend_from_slice(plain);
                let n = plain.len();
                self.inner = DecInner::Cbc {
                    dec,
                    held: [0; 16],
                    held_len: 0,
                };
                self.cut(start, n, out);
                false
            }
        };
        if self.decrypted < self.size {
            return Err(EsfsError::ShorterThanSize {
                size: self.size,
                got: self.decrypted,
            });
        }
        Ok(EsfsFinished {
            len: self.emitted,
            authenticated,
        })
    }
}

impl core::fmt::Debug for EsfsDecryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EsfsDecryptor")
            .field("size", &self.size)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

/// Encrypts a whole file in one call (see [`EsfsEncryptor`] for streaming).
pub fn encrypt(
    cipher: EsfsCipher,
    key: &[u8],
    iv: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EsfsError> {
    let mut enc = EsfsEncryptor::new(cipher, key, iv)?;
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(TAG_LEN));
    enc.update(plaintext, &mut out)?;
    enc.finish(&mut out);
    Ok(out)
}

/// Decrypts a whole file in one call and cuts it to `size`, the metadata's size (see
/// [`EsfsDecryptor`] for streaming). For GCM the result is authenticated; for CBC check the
/// metadata's hash before trusting it.
pub fn decrypt(
    cipher: EsfsCipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    size: u64,
) -> Result<Vec<u8>, EsfsError> {
    let mut dec = EsfsDecryptor::new(cipher, key, iv, size)?;
    let mut out = Vec::with_capacity(data.len());
    dec.update(data, &mut out)?;
    let _ = dec.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Research notes §6.2 vectors (computed with Python `cryptography`).
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
    const GCM_IV: &str = "ZGVmZ2hpamtsbW5v";
    const CBC_IV: &str = "yMnKy8zNzs/Q0dLT1NXW1w==";
    const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY16: &str = "AAECAwQFBgcICQoLDA0ODw==";

    fn b64(s: &str) -> Vec<u8> {
        B64.decode(s).unwrap()
    }

    fn vectors() -> Vec<(EsfsCipher, Vec<u8>, Vec<u8>, &'static str)> {
        vec![
            (EsfsCipher::Aes256GcmNoPadding, b64(KEY32), b64(GCM_IV),
             "1c73bb46089c3ffd55423d9ab51204dd24ad7e2ae1199e02d4f1c33e9ed1853cfc8c60ac2d68e224999c1fa1ad44c9eb189d81f689f7f022d32061"),
            (EsfsCipher::Aes128GcmNoPadding, b64(KEY16), b64(GCM_IV),
             "4e0a2b85aa77d199f01e3562e9bd45cc56e700dff8dcb02a874fdee1d980d787d2997248ea625eb1ee3740d6d93c0a82ac4290e4ff9b3090f90435"),
            (EsfsCipher::Aes256CbcPkcs7, b64(KEY32), b64(CBC_IV),
             "14ea8a63b9a6bdce06cad5c5e83016f4956cbfbbf4c4254ddd2441364c0d9d83536a4206a0f85cbe5cea824badba74d6"),
        ]
    }

    fn stream_dec(
        c: EsfsCipher,
        key: &[u8],
        iv: &[u8],
        data: &[u8],
        size: u64,
        chunk: usize,
    ) -> Result<(Vec<u8>, EsfsFinished), EsfsError> {
        let mut dec = EsfsDecryptor::new(c, key, iv, size)?;
        let mut out = Vec::new();
        for part in data.chunks(chunk.max(1)) {
            let before = out.len();
            let n = dec.update(part, &mut out)?;
            assert_eq!(out.len() - before, n);
        }
        let fin = dec.finish(&mut out)?;
        assert_eq!(fin.len(), out.len() as u64);
        Ok((out, fin))
    }

    #[test]
    fn research_vectors_all_ciphers() {
        for (c, key, iv, ct) in vectors() {
            assert_eq!(
                hex::encode(encrypt(c, &key, &iv, FOX).unwrap()),
                ct,
                "{c:?}"
            );
            assert_eq!(c.encrypted_len(43), Some(ct.len() as u64 / 2));
            let data = hex::decode(ct).unwrap();
            assert_eq!(decrypt(c, &key, &iv, &data, 43).unwrap(), FOX);
            for chunk in [1, 5, 15, 16, 17, 32, 100] {
                let mut enc = EsfsEncryptor::new(c, &key, &iv).unwrap();
                let mut out = Vec::new();
                for part in FOX.chunks(chunk) {
                    enc.update(part, &mut out).unwrap();
                }
                enc.finish(&mut out);
                assert_eq!(hex::encode(&out), ct, "{c:?} chunk {chunk}");
                let (plain, fin) = stream_dec(c, &key, &iv, &data, 43, chunk).unwrap();
                assert_eq!(plain, FOX);
                assert_eq!(fin.authenticated(), c != EsfsCipher::Aes256CbcPkcs7);
            }
        }
        let gcm = encrypt(
            EsfsCipher::Aes256GcmNoPadding,
            &b64(KEY32),
            &b64(GCM_IV),
            FOX,
        )
        .unwrap();
        assert_eq!(
            B64.encode(Sha256::digest(&gcm)),
            "GV2X8K2scSPLPEE7qBCvDfc8e35HGytZxHLmvRPDtcc="
        );
        assert_eq!(
            B64.encode(Sha256::digest(FOX)),
            "16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI="
        );
    }

    #[test]
    fn output_is_cut_to_the_metadata_size() {
        for (c, key, iv, ct) in vectors() {
            let data = hex::decode(ct).unwrap();
            for size in [0u64, 1, 10, 16, 42] {
                for chunk in [1, 7, 64] {
                    let (plain, _) = stream_dec(c, &key, &iv, &data, size, chunk).unwrap();
                    assert_eq!(plain, &FOX[..size as usize], "{c:?} {size}");
                }
            }
            assert_eq!(
                decrypt(c, &key, &iv, &data, 44),
                Err(EsfsError::ShorterThanSize { size: 44, got: 43 })
            );
        }
    }

    #[test]
    fn damage_is_detected() {
        for (c, key, iv, ct) in vectors() {
            let data = hex::decode(ct).unwrap();
            let mut bad = data.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let err = decrypt(c, &key, &iv, &bad, 43).unwrap_err();
            match c {
                EsfsCipher::Aes256CbcPkcs7 => assert_eq!(err, EsfsError::Padding),
                _ => assert_eq!(err, EsfsError::TagMismatch),
            }
            // GCM: every bit.
            if c != EsfsCipher::Aes256CbcPkcs7 {
                for i in 0..data.len() * 8 {
                    let mut bad = data.clone();
                    bad[i / 8] ^= 1 << (i % 8);
                    assert_eq!(decrypt(c, &key, &iv, &bad, 43), Err(EsfsError::TagMismatch));
                }
            }
            assert_eq!(
                decrypt(c, &key, &iv, &data[..10], 0).unwrap_err(),
                if c == EsfsCipher::Aes256CbcPkcs7 {
                    EsfsError::NotBlockAligned
                } else {
                    EsfsError::Truncated
                }
            );
            assert_eq!(
                decrypt(c, &key, &iv, &[], 0).unwrap_err(),
                EsfsError::Truncated
            );
        }
        let cbc = hex::decode(vectors()[2].3).unwrap();
        assert_eq!(
            decrypt(
                EsfsCipher::Aes256CbcPkcs7,
                &b64(KEY32),
                &b64(CBC_IV),
                &cbc[..47],
                0
            ),
            Err(EsfsError::NotBlockAligned)
        );
    }

    #[test]
    fn cbc_padding_edges_round_trip() {
        let key = [9u8; 32];
        let iv = [3u8; 16];
        for len in 0..70usize {
            let pt: Vec<u8> = (0..len as u8).collect();
            let ct = encrypt(EsfsCipher::Aes256CbcPkcs7, &key, &iv, &pt).unwrap();
            assert_eq!(
                ct.len() as u64,
                EsfsCipher::Aes256CbcPkcs7
                    .encrypted_len(len as u64)
                    .unwrap()
            );
            for chunk in [1, 3, 16, 33] {
                let (plain, _) = stream_dec(
                    EsfsCipher::Aes256CbcPkcs7,
                    &key,
                    &iv,
                    &ct,
                    len as u64,
                    chunk,
                )
                .unwrap();
                assert_eq!(plain, pt);
            }
        }
    }

    #[test]
    fn urns_and_lengths() {
        for c in EsfsCipher::ALL {
            assert_eq!(EsfsCipher::from_urn(c.urn()), Some(c));
        }
        assert_eq!(
            EsfsCipher::from_urn("urn:xmpp:ciphers:aes-256-gcm-nopadding"),
            None
        );
        assert_eq!(
            EsfsEncryptor::new(EsfsCipher::Aes128GcmNoPadding, &[0; 32], &[0; 12]).unwrap_err(),
            EsfsError::KeyLength {
                expected: 16,
                got: 32
            }
        );
        assert_eq!(
            EsfsDecryptor::new(EsfsCipher::Aes256CbcPkcs7, &[0; 32], &[0; 12], 0).unwrap_err(),
            EsfsError::IvLength {
                expected: 16,
                got: 12
            }
        );
        assert_eq!(EsfsCipher::Aes256CbcPkcs7.encrypted_len(u64::MAX), None);
        assert_eq!(EsfsCipher::Aes256CbcPkcs7.encrypted_len(16), Some(32));
        assert_eq!(EsfsCipher::Aes256GcmNoPadding.encrypted_len(1), Some(17));
    }
}
