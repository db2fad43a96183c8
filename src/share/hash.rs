//! Streaming XEP-0300 hashes of a file, and their verification against the hashes a share
//! announces (XEP-0447 §6: verify before presenting a file; without any supported hash, do
//! not trust sources attached by others).
//!
//! Always sha-256 (the one algorithm every SFS client understands; Dino accepts only
//! sha-1/256/384/512), plus any of [`HashAlgo`]. Algorithm names are read with their
//! spellings in the wild: `blake2b-256` (XEP-0300 table, QXmpp), `id-blake2b256` (XEP-0300's
//! registry, the XEP-0447/0448 examples), `BLAKE2b256` (slixmpp), and `sha-384` (which
//! xmpp-parsers reads as `Algo::Unknown`).
//!
//! The hash crates are the ones xmpp-parsers 0.23 already builds (sha1 0.11, sha2 0.11,
//! sha3 0.12, blake2 0.10), so this module needs no cargo feature.
//!
//! ```
//! use xmpp_upload::share::hash::{verify, FileHasher, HashAlgo, Verifier};
//!
//! let mut h = FileHasher::new().with(HashAlgo::Sha512);
//! h.update(b"The quick brown fox ");
//! h.update(b"jumps over the lazy dog");
//! let hashes = h.finish();
//! assert_eq!(hashes[0].to_base64(), "16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=");
//!
//! // Receiving: hash what was downloaded with the algorithms the share names, compare.
//! let mut v = Verifier::new(&hashes)?;
//! v.update(b"The quick brown fox jumps over the lazy dog");
//! v.finish()?;
//! assert!(verify(&hashes, b"The quick brown fox jumps over the lazy cat").is_err());
//! # Ok::<(), xmpp_upload::share::hash::VerifyError>(())
//! ```

use sha2::Digest as _;
use xmpp_parsers::hashes::{Algo, Hash};

/// A hash algorithm this module computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashAlgo {
    /// `sha-1` (weak; read for Dino's sake, not recommended to send alone).
    Sha1,
    /// `sha-256`.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
    /// `sha3-256`.
    Sha3_256,
    /// `sha3-512`.
    Sha3_512,
    /// `blake2b-256` (also read as `id-blake2b256`, `BLAKE2b256`).
    Blake2b256,
    /// `blake2b-512` (also read as `id-blake2b512`, `BLAKE2b512`).
    Blake2b512,
}

impl HashAlgo {
    /// Every algorithm this module computes.
    pub const ALL: [HashAlgo; 8] = [
        HashAlgo::Sha256,
        HashAlgo::Sha512,
        HashAlgo::Sha384,
        HashAlgo::Sha3_256,
        HashAlgo::Sha3_512,
        HashAlgo::Blake2b256,
        HashAlgo::Blake2b512,
        HashAlgo::Sha1,
    ];

    /// The algorithm of a name as seen on the wire (see the [module documentation](self)).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim() {
            "sha-1" => HashAlgo::Sha1,
            "sha-256" => HashAlgo::Sha256,
            "sha-384" => HashAlgo::Sha384,
            "sha-512" => HashAlgo::Sha512,
            "sha3-256" => HashAlgo::Sha3_256,
            "sha3-512" => HashAlgo::Sha3_512,
            "blake2b-256" | "id-blake2b256" | "BLAKE2b256" => HashAlgo::Blake2b256,
            "blake2b-512" | "id-blake2b512" | "BLAKE2b512" => HashAlgo::Blake2b512,
            _ => return None,
        })
    }

    /// The algorithm of an xmpp-parsers [`Algo`].
    #[must_use]
    pub fn from_algo(algo: &Algo) -> Option<Self> {
        Some(match algo {
            Algo::Sha_1 => HashAlgo::Sha1,
            Algo::Sha_256 => HashAlgo::Sha256,
            Algo::Sha_512 => HashAlgo::Sha512,
            Algo::Sha3_256 => HashAlgo::Sha3_256,
            Algo::Sha3_512 => HashAlgo::Sha3_512,
            Algo::Blake2b_256 => HashAlgo::Blake2b256,
            Algo::Blake2b_512 => HashAlgo::Blake2b512,
            Algo::Unknown(name) => return Self::from_name(name),
        })
    }

    /// The XEP-0300 name written when sending.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha1 => "sha-1",
            HashAlgo::Sha256 => "sha-256",
            HashAlgo::Sha384 => "sha-384",
            HashAlgo::Sha512 => "sha-512",
            HashAlgo::Sha3_256 => "sha3-256",
            HashAlgo::Sha3_512 => "sha3-512",
            HashAlgo::Blake2b256 => "blake2b-256",
            HashAlgo::Blake2b512 => "blake2b-512",
        }
    }

    /// The xmpp-parsers [`Algo`] (`Algo::Unknown("sha-384")` for sha-384).
    #[must_use]
    pub fn algo(self) -> Algo {
        match self {
            HashAlgo::Sha1 => Algo::Sha_1,
            HashAlgo::Sha256 => Algo::Sha_256,
            HashAlgo::Sha384 => Algo::Unknown(self.name().to_owned()),
            HashAlgo::Sha512 => Algo::Sha_512,
            HashAlgo::Sha3_256 => Algo::Sha3_256,
            HashAlgo::Sha3_512 => Algo::Sha3_512,
            HashAlgo::Blake2b256 => Algo::Blake2b_256,
            HashAlgo::Blake2b512 => Algo::Blake2b_512,
        }
    }
}

type Blake2b256 = blake2::Blake2b<blake2::digest::consts::U32>;

#[derive(Clone)]
enum State {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Sha3_256(sha3::Sha3_256),
    Sha3_512(sha3::Sha3_512),
    Blake2b256(Blake2b256),
    Blake2b512(blake2::Blake2b512),
}

impl State {
    fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Sha1 => State::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => State::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha384 => State::Sha384(sha2::Sha384::new()),
            HashAlgo::Sha512 => State::Sha512(sha2::Sha512::new()),
            HashAlgo::Sha3_256 => State::Sha3_256(sha3::Sha3_256::new()),
            HashAlgo::Sha3_512 => State::Sha3_512(sha3::Sha3_512::new()),
            HashAlgo::Blake2b256 => State::Blake2b256(blake2::Digest::new()),
            HashAlgo::Blake2b512 => State::Blake2b512(blake2::Digest::new()),
        }
    }

    fn algo(&self) -> HashAlgo {
        match self {
            State::Sha1(_) => HashAlgo::Sha1,
            State::Sha256(_) => HashAlgo::Sha256,
            State::Sha384(_) => HashAlgo::Sha384,
            State::Sha512(_) => HashAlgo::Sha512,
            State::Sha3_256(_) => HashAlgo::Sha3_256,
            State::Sha3_512(_) => HashAlgo::Sha3_512,
            State::Blake2b256(_) => HashAlgo::Blake2b256,
            State::Blake2b512(_) => HashAlgo::Blake2b512,
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            State::Sha1(h) => h.update(data),
            State::Sha256(h) => h.update(data),
            State::Sha384(h) => h.update(data),
            State::Sha512(h) => h.update(data),
            State::Sha3_256(h) => h.update(data),
            State::Sha3_512(h) => h.update(data),
            State::Blake2b256(h) => blake2::Digest::update(h, data),
            State::Blake2b512(h) => blake2::Digest::update(h, data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
            State::Sha384(h) => h.finalize().to_vec(),
            State::Sha512(h) => h.finalize().to_vec(),
            State::Sha3_256(h) => h.finalize().to_vec(),
            State::Sha3_512(h) => h.finalize().to_vec(),
            State::Blake2b256(h) => blake2::Digest::finalize(h).to_vec(),
            State::Blake2b512(h) => blake2::Digest::finalize(h).to_vec(),
        }
    }
}

/// Hashes a file as it streams by: sha-256 always, plus the algorithms added with
/// [`FileHasher::with`]. Feed the bytes in chunks of any size with [`FileHasher::update`].
#[derive(Clone)]
pub struct FileHasher {
    states: Vec<State>,
}

impl core::fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.states.iter().map(|s| s.algo().name()))
            .finish()
    }
}

impl Default for FileHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl FileHasher {
    /// A hasher computing sha-256.
    #[must_use]
    pub fn new() -> Self {
        Self {
            states: vec![State::new(HashAlgo::Sha256)],
        }
    }

    /// Also computes `algo` (once, however often it is added).
    #[must_use]
    pub fn with(mut self, algo: HashAlgo) -> Self {
        if !self.algos().any(|a| a == algo) {
            self.states.push(State::new(algo));
        }
        self
    }

    /// The algorithms computed, sha-256 first.
    pub fn algos(&self) -> impl Iterator<Item = HashAlgo> + '_ {
        self.states.iter().map(State::algo)
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        for s in &mut self.states {
            s.update(data);
        }
    }

    /// The digests, sha-256 first, as XEP-0300 hashes named by [`HashAlgo::algo`].
    #[must_use]
    pub fn finish(self) -> Vec<Hash> {
        self.states
            .into_iter()
            .map(|s| Hash::new(s.algo().algo(), s.finish()))
            .collect()
    }
}

/// Why a file does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// None of the announced hashes uses an algorithm this module computes (or none was
    /// computed for it): the file cannot be checked. XEP-0447 §6: ignore sources attached by
    /// others and insecure sources.
    #[error("no supported hash to verify the file with")]
    NoSupportedHash,
    /// A digest differs: the bytes are not the announced file.
    #[error("the {0} digest does not match")]
    Mismatch(&'static str),
}

/// Checks `computed` digests (of [`FileHasher::finish`]) against the `expected` hashes of a
/// share: every expected hash whose algorithm was computed must match, and at least one must
/// have been compared.
pub fn verify_hashes(expected: &[Hash], computed: &[Hash]) -> Result<(), VerifyError> {
    let mut compared = false;
    for e in expected {
        let Some(algo) = HashAlgo::from_algo(&e.algo) else {
            continue;
        };
        for c in computed
            .iter()
            .filter(|c| HashAlgo::from_algo(&c.algo) == Some(algo))
        {
            if c.hash != e.hash {
                return Err(VerifyError::Mismatch(algo.name()));
            }
            compared = true;
        }
    }
    if compared {
        Ok(())
    } else {
        Err(VerifyError::NoSupportedHash)
    }
}

/// Hashes `data` in one go with the algorithms `expected` names, and verifies it.
pub fn verify(expected: &[Hash], data: &[u8]) -> Result<(), VerifyError> {
    let mut v = Verifier::new(expected)?;
    v.update(data);
    v.finish()
}

/// Streaming verification: hashes with exactly the supported algorithms the share names.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Vec<Hash>,
    hasher: FileHasher,
}

impl Verifier {
    /// A verifier for these announced hashes; [`VerifyError::NoSupportedHash`] when none is
    /// supported.
    pub fn new(expected: &[Hash]) -> Result<Self, VerifyError> {
        let algos: Vec<HashAlgo> = expected
            .iter()
            .filter_map(|h| HashAlgo::from_algo(&h.algo))
            .collect();
        if algos.is_empty() {
            return Err(VerifyError::NoSupportedHash);
        }
        let hasher = FileHasher { states: Vec::new() };
        let hasher = algos.into_iter().fold(hasher, FileHasher::with);
        Ok(Self {
            expected: expected.to_vec(),
            hasher,
        })
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Compares the digests once the whole file went through.
    pub fn finish(self) -> Result<(), VerifyError> {
        verify_hashes(&self.expected, &self.hasher.finish())
    }
}
