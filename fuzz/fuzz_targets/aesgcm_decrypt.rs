//! Arbitrary bytes → AES-256-GCM (feature `aesgcm`): key, IV (12 or 16 bytes), chunking and
//! data all come from the input. The streaming `Decryptor` agrees with the one-shot `open`
//! (aes-gcm 0.11) on every input, success or error; in "seal" mode the input is plaintext
//! and `Encryptor` must equal `seal`, and both paths must open it again.
//!
//! Layout: `key[32] flags[1] iv[12|16] chunk_seed[1] data…`; flags bit 0: 16-byte IV,
//! bit 1: seal mode (12-byte IV only).
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload::aesgcm::{open, seal, AesGcmUrl, Decryptor, Encryptor, Iv};

/// Chunk lengths from a seed: 0 to 40 bytes, with some large ones.
fn chunks(mut seed: u8, data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        seed = seed.wrapping_mul(97).wrapping_add(31);
        let n = if seed % 7 == 0 { 1000 } else { usize::from(seed % 41) };
        let (now, later) = rest.split_at(n.min(rest.len()));
        out.push(now);
        rest = later;
    }
    out
}

fn decrypt_stream(link: &AesGcmUrl, seed: u8, data: &[u8]) -> Result<Vec<u8>, xmpp_upload::aesgcm::DecryptError> {
    let mut dec = Decryptor::for_link(link);
    let mut out = Vec::new();
    for c in chunks(seed, data) {
        dec.update(c, &mut out)?;
    }
    let v = dec.finish()?;
    assert_eq!(v.len(), out.len() as u64);
    Ok(out)
}

fuzz_target!(|input: &[u8]| {
    let Some((key, rest)) = input.split_first_chunk::<32>() else {
        return;
    };
    let Some((&flags, rest)) = rest.split_first() else {
        return;
    };
    let iv_len = if flags & 1 == 1 { 16 } else { 12 };
    if rest.len() < iv_len + 1 {
        return;
    }
    let (iv, rest) = rest.split_at(iv_len);
    let Some((&seed, data)) = rest.split_first() else {
        return;
    };
    let Some(iv) = Iv::from_slice(iv) else {
        return;
    };
    let get = url::Url::parse("https://h.example/f.bin").expect("constant URL");
    let link = AesGcmUrl::with_iv(&get, *key, iv).expect("https without fragment");

    if flags & 2 == 2 {
        let Iv::Standard(iv12) = iv else {
            return;
        };
        let sealed = seal(key, &iv12, data);
        let mut enc = Encryptor::new(key, &iv12);
        let mut streamed = Vec::new();
        for c in chunks(seed, data) {
            enc.update(c, &mut streamed).expect("far below GCM's limit");
        }
        streamed.extend_from_slice(&enc.finish());
        assert_eq!(streamed, sealed);
        assert_eq!(open(&link, &sealed).as_deref(), Ok(data));
        assert_eq!(decrypt_stream(&link, seed.wrapping_add(1), &sealed).as_deref(), Ok(data));
    } else {
        assert_eq!(decrypt_stream(&link, seed, data), open(&link, data));
    }
});
