//! Encrypted media on the client side: XEP-0454 `aesgcm://` links (OMEMO Media Sharing) and
//! the XEP-0448 (ESFS) ciphers, as pure computation over bytes the caller streams in.
//!
//! ### What this module does, and what it leaves to you
//! It encrypts and decrypts; it never reads a file, the network or a system RNG. Keys and IVs
//! come from you, or from a `rand_core` generator you pass in ([`AesGcmUrl::generate`]).
//! Sending the link is the job of your OMEMO layer: the link alone is the message body,
//! never an OOB element, and [`AesGcmUrl::https_url`] (without the fragment) is what to fetch.
//!
//! ```text
//! upload:   plaintext ──Encryptor──► ciphertext ‖ tag ──PUT (slot of encrypted_len(size))──► server
//!           AesGcmUrl::new(GET URL, key, iv) ──► OMEMO body "aesgcm://…#iv‖key"
//! download: "aesgcm://…" ──parse──► https_url() ──GET──► Decryptor ──► temp file
//!                                                   finish() == Ok(Verified) ──► rename
//! ```
//!
//! ### Streaming and unverified plaintext
//! [`Encryptor`] and [`Decryptor`] run in constant memory whatever the file size (GCM allows
//! up to 2^36 − 32 bytes, about 64 GiB, per key and IV; more is an error, not a panic).
//! **Plaintext that [`Decryptor::update`] hands out is not authenticated yet**: an attacker
//! who can change the file can change those bytes. Write it to a temporary file, and move
//! that file to where anyone will read it only once [`Decryptor::finish`] has returned a
//! [`Verified`]. On an error, delete the temporary file.
//!
//! [`seal`] and [`open`] do the same in one call, in memory (aes-gcm 0.11).
//!
//! ```
//! use xmpp_upload::aesgcm::{self, AesGcmUrl, Decryptor, Encryptor};
//!
//! let key = [0x42; 32];
//! let iv = [0x24; 12];
//! // Upload: encrypt chunk by chunk, then append the tag.
//! let mut enc = Encryptor::new(&key, &iv);
//! let mut upload = Vec::new();
//! for chunk in [&b"The quick brown fox "[..], b"jumps over the lazy dog"] {
//!     enc.update(chunk, &mut upload)?;
//! }
//! upload.extend_from_slice(&enc.finish());
//! assert_eq!(upload.len() as u64, aesgcm::encrypted_len(43).unwrap());
//! assert_eq!(upload, aesgcm::seal(&key, &iv, b"The quick brown fox jumps over the lazy dog"));
//!
//! // The slot's GET URL becomes the link sent inside the OMEMO message.
//! let get = "https://files.montague.tld/f/fox.txt".parse()?;
//! let link = AesGcmUrl::new(&get, key, iv)?;
//! let received: AesGcmUrl = link.to_string().parse()?;
//!
//! // Download: decrypt as the bytes arrive, trust the result only after `finish`.
//! let mut dec = Decryptor::for_link(&received);
//! let mut temp_file = Vec::new();
//! for chunk in upload.chunks(7) {
//!     dec.update(chunk, &mut temp_file)?;
//! }
//! let verified = dec.finish()?; // now rename the temporary file
//! assert_eq!(verified.len(), 43);
//! assert_eq!(temp_file, b"The quick brown fox jumps over the lazy dog");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use aead::AeadInOut;
use aes::cipher::consts::{U12, U16};
use aes::cipher::KeyInit;
use aes::Aes256;
use zeroize::Zeroizing;

pub mod esfs;
mod gcm;
mod link;

pub use link::AesGcmUrl;

use gcm::{GcmCore, GcmOpen, OpenError, Overflow};

use aes_gcm::aead;

/// Key length of XEP-0454 (AES-256), in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the GCM tag appended to the ciphertext, in bytes.
pub const TAG_LEN: usize = gcm::TAG_LEN;
/// The most plaintext GCM can encrypt under one key and IV: 2^36 − 32 bytes
/// (NIST SP 800-38D §5.2.1.1).
pub const MAX_PLAINTEXT_LEN: u64 = gcm::P_MAX;

/// The content type XEP-0454 uploads are declared with by default, which tells the server
/// nothing about the file.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The size of the encrypted upload for a file of `plain` bytes, which is the size to ask
/// the upload slot for: the ciphertext is as long as the plaintext, plus the 16-byte tag.
///
/// `None` when `plain` is beyond what GCM can encrypt ([`MAX_PLAINTEXT_LEN`]).
///
/// ```
/// assert_eq!(xmpp_upload::aesgcm::encrypted_len(23456), Some(23472));
/// assert_eq!(xmpp_upload::aesgcm::encrypted_len(1 << 40), None);
/// ```
#[must_use]
pub const fn encrypted_len(plain: u64) -> Option<u64> {
    if plain > MAX_PLAINTEXT_LEN {
        return None;
    }
    plain.checked_add(TAG_LEN as u64)
}

/// Which content type to declare for an encrypted upload (slot request and PUT).
///
/// Clients disagree (research notes on XEP-0454 clients): Dino and Monal send
/// `application/octet-stream`, which leaks nothing about the file; Conversations, Gajim,
/// Profanity and Converse.js send the original type, which servers with a type allow-list
/// accept and which lets Gajim preview the file without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContentTypePolicy {
    /// Always `application/octet-stream` (the default: private).
    #[default]
    OctetStream,
    /// The original file's type when known, else `application/octet-stream`.
    Original,
}

impl ContentTypePolicy {
    /// The content type to declare for an encrypted file whose plaintext has type
    /// `original`.
    ///
    /// ```
    /// use xmpp_upload::aesgcm::ContentTypePolicy;
    /// assert_eq!(ContentTypePolicy::default().content_type(Some("image/jpeg")), "application/octet-stream");
    /// assert_eq!(ContentTypePolicy::Original.content_type(Some("image/jpeg")), "image/jpeg");
    /// assert_eq!(ContentTypePolicy::Original.content_type(None), "application/octet-stream");
    /// ```
    #[must_use]
    pub fn content_type(self, original: Option<&str>) -> &str {
        match (self, original) {
            (Self::Original, Some(t)) if !t.is_empty() => t,
            _ => OCTET_STREAM,
        }
    }
}

/// A GCM initialisation vector as found in `aesgcm://` links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Iv {
    /// 12 bytes (96 bits): the standard, what XEP-0454 and every client since 2020 send.
    Standard([u8; 12]),
    /// 16 bytes: early clients' links, still accepted by Conversations, Dino, Gajim and
    /// Converse.js (GCM then derives its counter block with GHASH).
    Legacy([u8; 16]),
}

impl Iv {
    /// The IV's bytes (12 or 16).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Standard(b) => b,
            Self::Legacy(b) => b,
        }
    }

    /// An IV of 12 or 16 bytes; `None` for other lengths.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if let Ok(b) = <[u8; 12]>::try_from(bytes) {
            return Some(Self::Standard(b));
        }
        <[u8; 16]>::try_from(bytes).ok().map(Self::Legacy)
    }
}

/// Why a string or URL cannot be an `aesgcm://` link. Never contains the key or the fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Only `https` GET URLs may become `aesgcm` links (XEP-0454 §3).
    #[error("only https URLs can become aesgcm:// links")]
    NotHttps,
    /// The GET URL already has a fragment, where the key would go.
    #[error("the GET URL already has a fragment")]
    HasFragment,
    /// The text does not start with `aesgcm://`.
    #[error("not an aesgcm:// link")]
    NotAesGcm,
    /// The link has no `#` fragment with the IV and the key.
    #[error("the aesgcm:// link has no fragment with the IV and key")]
    MissingFragment,
    /// The fragment has this many characters, not 88 (12-byte IV) or 96 (16-byte IV).
    #[error("the fragment has {0} characters; expected 88 (12-byte IV) or 96 (16-byte IV)")]
    FragmentLength(usize),
    /// The fragment is not hexadecimal.
    #[error("the fragment is not hexadecimal")]
    FragmentNotHex,
    /// The rest of the link is not a valid URL.
    #[error("the link is not a valid URL: {0}")]
    Url(url::ParseError),
    /// The random number generator passed to [`AesGcmUrl::generate`] failed.
    #[error("the random number generator failed")]
    Rng,
}

/// More than GCM's limit of 2^36 − 32 bytes under one key and IV ([`MAX_PLAINTEXT_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("GCM encrypts at most 2^36 - 32 bytes under one key and IV")]
pub struct TooLong;

/// Why decryption failed. Whatever plaintext was handed out before must be thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The tag does not match: wrong key or IV, or the file was changed or cut.
    #[error("the authentication tag does not match (wrong key, or a modified or cut file)")]
    TagMismatch,
    /// Fewer than 16 bytes: not even a tag.
    #[error("the encrypted file is shorter than its 16-byte tag")]
    Truncated,
    /// More ciphertext than GCM allows under one key and IV.
    #[error("more ciphertext than GCM allows under one key and IV")]
    TooLong,
}

impl From<Overflow> for TooLong {
    fn from(_: Overflow) -> Self {
        TooLong
    }
}

impl From<Overflow> for DecryptError {
    fn from(_: Overflow) -> Self {
        DecryptError::TooLong
    }
}

impl From<OpenError> for DecryptError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Truncated => DecryptError::Truncated,
            OpenError::TagMismatch => DecryptError::TagMismatch,
        }
    }
}

fn aes256(key: &[u8; KEY_LEN]) -> Aes256 {
    Aes256::new(key.into())
}

/// Encrypts `plaintext` with AES-256-GCM (no associated data) in one call and returns
/// `ciphertext ‖ tag`: the body of an XEP-0454 upload.
///
/// Built on aes-gcm 0.11. For a file of any size in constant memory use [`Encryptor`].
/// A plaintext beyond GCM's limit ([`MAX_PLAINTEXT_LEN`], 64 GiB) gives an empty vector,
/// which is never a valid sealed file ([`encrypted_len`] says `None` for such sizes).
///
/// ```
/// let sealed = xmpp_upload::aesgcm::seal(&[0; 32], &[0; 12], b"hi");
/// assert_eq!(sealed.len(), 2 + 16);
/// ```
#[must_use]
pub fn seal(key: &[u8; KEY_LEN], iv: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let cipher = aes_gcm::AesGcm::<Aes256, U12>::new(key.into());
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(TAG_LEN));
    out.extend_from_slice(plaintext);
    match cipher.encrypt_inout_detached(iv.into(), b"", out.as_mut_slice().into()) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            out
        }
        Err(_) => Vec::new(),
    }
}

/// Decrypts and authenticates a downloaded file (`ciphertext ‖ tag`) in one call, with the
/// key and IV (12 or 16 bytes) of its link. Nothing is returned unless the tag matches.
///
/// Built on aes-gcm 0.11. For a file of any size in constant memory use [`Decryptor`].
///
/// ```
/// use xmpp_upload::aesgcm::{open, seal, AesGcmUrl, DecryptError};
/// let link = AesGcmUrl::new(&"https://h.example/f.txt".parse()?, [3; 32], [5; 12])?;
/// let mut sealed = seal(link.key(), &[5; 12], b"hello");
/// assert_eq!(open(&link, &sealed)?, b"hello");
/// sealed[0] ^= 1;
/// assert_eq!(open(&link, &sealed), Err(DecryptError::TagMismatch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open(link: &AesGcmUrl, data: &[u8]) -> Result<Vec<u8>, DecryptError> {
    let (ciphertext, tag) = data
        .split_last_chunk::<TAG_LEN>()
        .ok_or(DecryptError::Truncated)?;
    if ciphertext.len() as u64 > MAX_PLAINTEXT_LEN {
        return Err(DecryptError::TooLong);
    }
    let mut out = Zeroizing::new(ciphertext.to_vec());
    let ok = match link.iv() {
        Iv::Standard(iv) => aes_gcm::AesGcm::<Aes256, U12>::new(link.key().into())
            .decrypt_inout_detached(iv.into(), b"", out.as_mut_slice().into(), tag.into()),
        Iv::Legacy(iv) => aes_gcm::AesGcm::<Aes256, U16>::new(link.key().into())
            .decrypt_inout_detached(iv.into(), b"", out.as_mut_slice().into(), tag.into()),
    };
    match ok {
        Ok(()) => Ok(core::mem::take(&mut *out)),
        Err(_) => Err(DecryptError::TagMismatch),
    }
}

/// Streaming AES-256-GCM encryption for an XEP-0454 upload, in constant memory.
///
/// Feed the plaintext in chunks of any size with [`update`](Encryptor::update) or
/// [`encrypt_in_place`](Encryptor::encrypt_in_place), then append the tag that
/// [`finish`](Encryptor::finish) returns. The result equals [`seal`]'s.
/// Key material is wiped when the encryptor is dropped.
pub struct Encryptor {
    core: GcmCore<Aes256>,
}

impl Encryptor {
    /// An encryptor for `key` and a 12-byte `iv`. Never reuse a key and IV pair for two files.
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; 12]) -> Self {
        Self {
            core: GcmCore::new(aes256(key), iv),
        }
    }

    /// An encryptor for the key and IV of `link`.
    pub fn for_link(link: &AesGcmUrl) -> Self {
        Self {
            core: GcmCore::new(aes256(link.key()), link.iv().as_bytes()),
        }
    }

    /// Encrypts `buf` in place: the next plaintext bytes in, their ciphertext out.
    /// On error nothing changes.
    pub fn encrypt_in_place(&mut self, buf: &mut [u8]) -> Result<(), TooLong> {
        Ok(self.core.encrypt(buf)?)
    }

    /// Appends the ciphertext of the next plaintext bytes `input` to `out`.
    /// On error nothing changes.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), TooLong> {
        if !self.core.fits(input.len()) {
            return Err(TooLong);
        }
        let start = out.len();
        out.extend_from_slice(input);
        if let Some(fresh) = out.get_mut(start..) {
            self.core.encrypt(fresh)?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn core_mut(&mut self) -> &mut GcmCore<Aes256> {
        &mut self.core
    }

    /// Plaintext bytes encrypted so far.
    pub fn len(&self) -> u64 {
        self.core.len()
    }

    /// Whether nothing has been encrypted yet.
    pub fn is_empty(&self) -> bool {
        self.core.len() == 0
    }

    /// The 16-byte tag, to append after the last ciphertext byte.
    #[must_use]
    pub fn finish(self) -> [u8; TAG_LEN] {
        *self.core.tag()
    }
}

impl core::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encryptor")
            .field("len", &self.core.len())
            .finish_non_exhaustive()
    }
}

/// Streaming AES-256-GCM decryption of an XEP-0454 download, in constant memory.
///
/// Feed the downloaded bytes (`ciphertext ‖ tag`) in chunks of any size, even shorter than
/// the tag: the last 16 bytes seen are held back, because they may be the tag. Then call
/// [`finish`](Decryptor::finish).
///
/// # Security
/// The plaintext [`update`](Decryptor::update) appends is **unverified** until `finish`
/// returns [`Verified`]. Write it to a temporary file (or keep it away from users, parsers
/// and thumbnailers), and rename or use it only after `finish` succeeds; on an error delete
/// it. The tag is compared in constant time; key material is wiped on drop.
pub struct Decryptor {
    open: GcmOpen<Aes256>,
}

impl Decryptor {
    /// A decryptor for `key` and `iv` (12 or 16 bytes).
    pub fn new(key: &[u8; KEY_LEN], iv: &Iv) -> Self {
        Self {
            open: GcmOpen::new(GcmCore::new(aes256(key), iv.as_bytes())),
        }
    }

    /// A decryptor for the key and IV of `link`.
    pub fn for_link(link: &AesGcmUrl) -> Self {
        Self::new(link.key(), link.iv())
    }

    /// Decrypts the next downloaded bytes and appends the **unverified** plaintext of every
    /// byte that can no longer be the tag to `out`; returns how many bytes it appended (up to
    /// 16 fewer than `input` has, and more later). On error nothing changes.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, DecryptError> {
        Ok(self.open.update(input, out)?)
    }

    /// Plaintext bytes handed out so far (unverified until [`finish`](Decryptor::finish)).
    pub fn len(&self) -> u64 {
        self.open.len()
    }

    /// Whether no plaintext has been handed out yet.
    pub fn is_empty(&self) -> bool {
        self.open.len() == 0
    }

    /// Checks the tag (the last 16 bytes fed). [`Verified`] is the proof that every byte
    /// [`update`](Decryptor::update) handed out is authentic; on an error, discard them all.
    pub fn finish(self) -> Result<Verified, DecryptError> {
        let len = self.open.finish()?;
        Ok(Verified { len })
    }
}

impl core::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decryptor")
            .field("len", &self.open.len())
            .finish_non_exhaustive()
    }
}

/// Proof that a [`Decryptor`] checked the tag: every plaintext byte it handed out is
/// authentic. Only [`Decryptor::finish`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "the plaintext is only trustworthy once this proof is checked"]
pub struct Verified {
    len: u64,
}

impl Verified {
    /// The length of the verified plaintext, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the verified plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests;
