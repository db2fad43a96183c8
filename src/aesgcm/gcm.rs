//! GCM (NIST SP 800-38D) composed from RustCrypto's `aes`, `ctr` and `ghash`, for streams of
//! any length in constant memory (crate-private).
//!
//! aes-gcm 0.11 has no incremental API: it needs the whole message in memory and, when
//! decrypting, checks the tag before it releases any plaintext. This core does what its
//! `init_ctr`/`compute_tag` do, one chunk at a time:
//!
//! * `H = E_K(0^128)`, the GHASH key;
//! * `J0 = IV ‖ 0^31 ‖ 1` for 12-byte IVs, `J0 = GHASH_H(IV ‖ 0^s ‖ 0^64 ‖ [len(IV)]_64)`
//!   otherwise (§7.1 step 2);
//! * the tag mask `E_K(J0)` is the first block of `Ctr32BE` keystream from `J0`, so the data
//!   keystream then starts at `inc32(J0)`;
//! * GHASH runs over the ciphertext in whole blocks; at most 15 bytes wait between calls, and
//!   only the final remainder is zero-padded;
//! * `tag = GHASH(C ‖ pad ‖ [0]_64 ‖ [8·len(C)]_64) ⊕ E_K(J0)` (no associated data).

use aes::cipher::array::Array;
use aes::cipher::consts::U16;
use aes::cipher::{
    BlockCipherEncrypt, BlockSizeUser, InnerIvInit, StreamCipher, StreamCipherCoreWrapper,
};
use ctr::flavors::Ctr32BE;
use ctr::CtrCore;
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use zeroize::{Zeroize, Zeroizing};

/// The GCM tag length in bytes (the full 128 bits: all of XEP-0454, XEP-0448 use it).
pub(crate) const TAG_LEN: usize = 16;

/// GCM's plaintext limit: 2^36 − 32 bytes (2^32 − 2 blocks; SP 800-38D §5.2.1.1).
pub(crate) const P_MAX: u64 = (1 << 36) - 32;

/// Bytes handled per pass of CTR then GHASH inside one call: small enough that the
/// ciphertext is still in L1 when GHASH reads it back, large enough for the parallel
/// AES-NI and CLMUL paths.
const PASS: usize = 8 * 1024;

type Block = Array<u8, U16>;

/// The plaintext or ciphertext would exceed GCM's limit of 2^36 − 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// One GCM operation (key and IV) in progress.
pub(crate) struct GcmCore<C>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    ctr: StreamCipherCoreWrapper<CtrCore<C, Ctr32BE>>,
    ghash: GHash,
    /// `E_K(J0)`.
    mask: Zeroizing<[u8; TAG_LEN]>,
    /// Ciphertext bytes not yet hashed (fewer than a block).
    partial: [u8; 16],
    partial_len: usize,
    /// Bytes processed so far.
    len: u64,
}

impl<C> GcmCore<C>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    /// Starts an operation with `cipher` (the keyed block cipher) and an IV of any length
    /// (12 bytes is the standard; other lengths go through GHASH, §7.1).
    pub(crate) fn new(cipher: C, iv: &[u8]) -> Self {
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        h.zeroize();

        let mut j0 = Block::default();
        if let Ok(iv12) = <[u8; 12]>::try_from(iv) {
            let (head, tail) = j0.split_at_mut(12);
            head.copy_from_slice(&iv12);
            tail.copy_from_slice(&[0, 0, 0, 1]);
        } else {
            let mut g = ghash.clone();
            g.update_padded(iv);
            let mut lengths = [0u8; 16];
            let bits = (iv.len() as u64).wrapping_mul(8).to_be_bytes();
            let (_, low) = lengths.split_at_mut(8);
            low.copy_from_slice(&bits);
            g.update(&[Block::from(lengths)]);
            j0 = g.finalize();
        }

        let mut ctr = StreamCipherCoreWrapper::from_core(CtrCore::inner_iv_init(cipher, &j0));
        j0.zeroize();
        let mut mask = Zeroizing::new([0u8; TAG_LEN]);
        // One block out of the 2^32 − 1 a 32-bit counter gives: never fails.
        ctr.apply_keystream(mask.as_mut_slice());
        Self {
            ctr,
            ghash,
            mask,
            partial: [0; 16],
            partial_len: 0,
            len: 0,
        }
    }

    /// Bytes processed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Pretends `len` bytes were processed, to test the length limit.
    #[cfg(test)]
    pub(crate) fn skip_for_test(&mut self, len: u64) {
        self.len = len;
    }

    /// Whether `more` bytes still fit under GCM's limit.
    pub(crate) fn fits(&self, more: usize) -> bool {
        self.len
            .checked_add(more as u64)
            .is_some_and(|total| total <= P_MAX)
    }

    fn reserve(&mut self, n: usize) -> Result<(), Overflow> {
        if !self.fits(n) {
            return Err(Overflow);
        }
        // The counter covers P_MAX + one block for the mask exactly; checked anyway.
        self.ctr.check_remaining(n).map_err(|_| Overflow)?;
        self.len = self.len.saturating_add(n as u64);
        Ok(())
    }

    /// Encrypts `buf` in place (plaintext in, ciphertext out).
    pub(crate) fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), Overflow> {
        self.reserve(buf.len())?;
        for pass in buf.chunks_mut(PASS) {
            self.ctr.apply_keystream(pass);
            self.absorb(pass);
        }
        Ok(())
    }

    /// Decrypts `buf` in place (ciphertext in, plaintext out, not yet authenticated).
    pub(crate) fn decrypt(&mut self, buf: &mut [u8]) -> Result<(), Overflow> {
        self.reserve(buf.len())?;
        for pass in buf.chunks_mut(PASS) {
            self.absorb(pass);
            self.ctr.apply_keystream(pass);
        }
        Ok(())
    }

    /// Feeds ciphertext to GHASH: whole blocks at once, the remainder kept for the next call.
    fn absorb(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let want = 16usize.saturating_sub(self.partial_len).min(data.len());
            let (head, rest) = data.split_at(want);
            if let Some(dst) = self
                .partial
                .get_mut(self.partial_len..self.partial_len + want)
            {
                dst.copy_from_slice(head);
            }
            self.partial_len += want;
            data = rest;
            if self.partial_len < 16 {
                return;
            }
            self.ghash.update(&[Block::from(self.partial)]);
            self.partial_len = 0;
        }
        let (blocks, tail) = Block::slice_as_chunks(data);
        self.ghash.update(blocks);
        if let Some(dst) = self.partial.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
            self.partial_len = tail.len();
        }
    }

    /// The tag over everything processed.
    pub(crate) fn tag(mut self) -> Zeroizing<[u8; TAG_LEN]> {
        if let Some(rest) = self.partial.get(..self.partial_len) {
            self.ghash.update_padded(rest);
        }
        let mut lengths = [0u8; 16];
        let (_, low) = lengths.split_at_mut(8);
        low.copy_from_slice(&self.len.wrapping_mul(8).to_be_bytes());
        self.ghash.update(&[Block::from(lengths)]);
        let s = self.ghash.clone().finalize();
        let mut tag = Zeroizing::new([0u8; TAG_LEN]);
        for ((t, a), b) in tag.iter_mut().zip(s.iter()).zip(self.mask.iter()) {
            *t = a ^ b;
        }
        tag
    }
}

/// The decrypting side: holds back the last 16 bytes of the input, which may be the tag,
/// whatever the chunking.
pub(crate) struct GcmOpen<C>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    core: GcmCore<C>,
    held: [u8; TAG_LEN],
    held_len: usize,
}

/// How a finished decryption ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Fewer than 16 bytes in all: no room for a tag.
    Truncated,
    /// The tag does not match.
    TagMismatch,
}

impl<C> GcmOpen<C>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    pub(crate) fn new(core: GcmCore<C>) -> Self {
        Self {
            core,
            held: [0; TAG_LEN],
            held_len: 0,
        }
    }

    /// Ciphertext bytes decrypted so far (the held-back bytes not counted).
    pub(crate) fn len(&self) -> u64 {
        self.core.len()
    }

    /// Appends the plaintext of every input byte that can no longer be part of the tag to
    /// `out`, and returns how many bytes it appended. On error nothing changes.
    pub(crate) fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Overflow> {
        let emit = hold_back(
            &mut self.held,
            &mut self.held_len,
            TAG_LEN,
            input,
            out,
            |n| self.core.fits(n),
        )?;
        let start = out.len().saturating_sub(emit);
        if let Some(fresh) = out.get_mut(start..) {
            self.core.decrypt(fresh)?;
        }
        Ok(emit)
    }

    #[cfg(test)]
    pub(crate) fn core_mut(&mut self) -> &mut GcmCore<C> {
        &mut self.core
    }

    /// Checks the tag (in constant time).
    pub(crate) fn finish(self) -> Result<u64, OpenError> {
        use subtle::ConstantTimeEq;
        if self.held_len < TAG_LEN {
            return Err(OpenError::Truncated);
        }
        let len = self.core.len();
        let expected = self.core.tag();
        if bool::from(expected.as_slice().ct_eq(self.held.as_slice())) {
            Ok(len)
        } else {
            Err(OpenError::TagMismatch)
        }
    }
}

/// Moves to `out` the bytes of `held ‖ input` that are certainly not among the last `keep`
/// bytes, keeps those last bytes (at most `keep`) in `held`, and returns how many bytes it
/// appended. `fits(n)` vets the amount first: when it refuses, nothing changes.
pub(crate) fn hold_back(
    held: &mut [u8; 16],
    held_len: &mut usize,
    keep: usize,
    input: &[u8],
    out: &mut Vec<u8>,
    fits: impl FnOnce(usize) -> bool,
) -> Result<usize, Overflow> {
    let total = held_len.saturating_add(input.len());
    let emit = total.saturating_sub(keep);
    if !fits(emit) {
        return Err(Overflow);
    }
    let from_held = emit.min(*held_len);
    let from_input = emit - from_held;
    out.reserve(emit);
    out.extend_from_slice(held.get(..from_held).unwrap_or_default());
    let (now, later) = input.split_at(from_input.min(input.len()));
    out.extend_from_slice(now);
    // What stays: the rest of the held bytes, then the rest of the input.
    let mut next = [0u8; 16];
    let kept_old = held.get(from_held..*held_len).unwrap_or_default();
    let n = kept_old.len() + later.len();
    if let Some(dst) = next.get_mut(..kept_old.len()) {
        dst.copy_from_slice(kept_old);
    }
    if let Some(dst) = next.get_mut(kept_old.len()..n) {
        dst.copy_from_slice(later);
    }
    *held = next;
    *held_len = n;
    Ok(emit)
}
