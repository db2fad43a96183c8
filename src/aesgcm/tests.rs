//! Known-answer vectors (research notes §6.1, computed with Python `cryptography` and Node's
//! `crypto`), the XEP-0454 example link, and the streaming path against aes-gcm 0.11.

use super::*;
use sha2::{Digest, Sha256};

const KEY: &str = "68e9af38a97aaf82faa4063b4d0878a61261534410c8a84331eaac851759f587";
const IV12: &str = "8c3d050e9386ec173861778f";
const IV16: &str = "8c3d050e9386ec173861778f00010203";
/// XEP-0454 §3, Example 1.
const XEP_LINK: &str = "aesgcm://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg#8c3d050e9386ec173861778f68e9af38a97aaf82faa4063b4d0878a61261534410c8a84331eaac851759f587";
const XEP_HTTPS: &str =
    "https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg";
const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";
const FOX_SEALED: &str = "0890dac89b2795a973f7cfb4becac94034a03781077a71206a8b07f20e42ca26c8a67a0c127f574d4f650b3bc4183f3c671d3b1ad3464981b97ba1";
const FOX_SEALED_IV16: &str = "be22017c189cc003cd29f1c4017bd47d8ec04e6463e35e6f8df3c30c2b8a674641346f573faeb7778804cacf5d9041a5b336f93799ac1c6e3e8c1e";
const EMPTY_SEALED: &str = "d834d36e97603bbc7d9947a0b387a935";

fn key() -> [u8; 32] {
    hex::decode(KEY).unwrap().try_into().unwrap()
}
fn iv12() -> [u8; 12] {
    hex::decode(IV12).unwrap().try_into().unwrap()
}
fn iv16() -> [u8; 16] {
    hex::decode(IV16).unwrap().try_into().unwrap()
}
fn link12() -> AesGcmUrl {
    XEP_LINK.parse().unwrap()
}
fn link16() -> AesGcmUrl {
    AesGcmUrl::with_iv(&XEP_HTTPS.parse().unwrap(), key(), Iv::Legacy(iv16())).unwrap()
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Chunk sizes for a stream of `len` bytes: mostly small (including 0 and < 16), some large.
fn random_split(rng: &mut XorShift, len: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = match rng.below(4) {
            0 => rng.below(17),
            1 => rng.below(40),
            2 => rng.below(300),
            _ => rng.below(70_000),
        }
        .min(left);
        out.push(n);
        left -= n;
    }
    out
}

fn encrypt_stream(link: &AesGcmUrl, pt: &[u8], split: &[usize]) -> Vec<u8> {
    let mut enc = Encryptor::for_link(link);
    let mut out = Vec::new();
    let mut rest = pt;
    for (i, &n) in split.iter().enumerate() {
        let (now, later) = rest.split_at(n);
        if i % 2 == 0 {
            enc.update(now, &mut out).unwrap();
        } else {
            let mut buf = now.to_vec();
            enc.encrypt_in_place(&mut buf).unwrap();
            out.extend_from_slice(&buf);
        }
        rest = later;
    }
    enc.update(rest, &mut out).unwrap();
    assert_eq!(enc.len(), pt.len() as u64);
    out.extend_from_slice(&enc.finish());
    out
}

fn decrypt_stream(link: &AesGcmUrl, data: &[u8], split: &[usize]) -> Result<Vec<u8>, DecryptError> {
    let mut dec = Decryptor::for_link(link);
    let mut out = Vec::new();
    let mut rest = data;
    for &n in split {
        let (now, later) = rest.split_at(n.min(rest.len()));
        let before = out.len();
        let appended = dec.update(now, &mut out)?;
        assert_eq!(out.len() - before, appended);
        rest = later;
    }
    dec.update(rest, &mut out)?;
    let v = dec.finish()?;
    assert_eq!(v.len(), out.len() as u64);
    Ok(out)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn kat_empty_and_fox_one_shot() {
    assert_eq!(hex::encode(seal(&key(), &iv12(), b"")), EMPTY_SEALED);
    assert_eq!(hex::encode(seal(&key(), &iv12(), FOX)), FOX_SEALED);
    assert_eq!(
        open(&link12(), &hex::decode(EMPTY_SEALED).unwrap()).unwrap(),
        b""
    );
    assert_eq!(
        open(&link12(), &hex::decode(FOX_SEALED).unwrap()).unwrap(),
        FOX
    );
}

#[test]
fn kat_empty_and_fox_streaming() {
    assert_eq!(
        hex::encode(encrypt_stream(&link12(), b"", &[])),
        EMPTY_SEALED
    );
    let sealed = hex::decode(FOX_SEALED).unwrap();
    for split in [
        vec![],
        vec![1; 43],
        vec![15, 1, 16, 11],
        vec![16, 16, 11],
        vec![0, 43],
    ] {
        assert_eq!(
            hex::encode(encrypt_stream(&link12(), FOX, &split)),
            FOX_SEALED
        );
    }
    for split in [
        vec![],
        vec![1; 59],
        vec![58, 1],
        vec![43, 15, 1],
        vec![3, 50, 6],
        vec![59],
    ] {
        assert_eq!(decrypt_stream(&link12(), &sealed, &split).unwrap(), FOX);
    }
    assert_eq!(
        decrypt_stream(&link12(), &hex::decode(EMPTY_SEALED).unwrap(), &[5, 5]).unwrap(),
        b""
    );
}

#[test]
fn kat_legacy_16_byte_iv() {
    let link = link16();
    let sealed = hex::decode(FOX_SEALED_IV16).unwrap();
    assert_eq!(open(&link, &sealed).unwrap(), FOX);
    assert_eq!(decrypt_stream(&link, &sealed, &[7, 7, 7]).unwrap(), FOX);
    assert_eq!(
        hex::encode(encrypt_stream(&link, FOX, &[20, 3])),
        FOX_SEALED_IV16
    );
    // The same key with the 12-byte prefix of that IV is a different GCM nonce.
    assert_eq!(open(&link12(), &sealed), Err(DecryptError::TagMismatch));
}

#[test]
fn kat_one_mebibyte_and_five() {
    let pt = pattern(1_048_581);
    assert_eq!(
        hex::encode(Sha256::digest(&pt)),
        "b5c324a19845fd0e5fd3bb9471d9ced2215154672c50aca851fc0ca780f761da"
    );
    let ct_sha = "d15daf8d8979d7d8093ad3b8f2a108950d13142311e98701eb14842d224374dd";
    let sealed = seal(&key(), &iv12(), &pt);
    assert_eq!(hex::encode(Sha256::digest(&sealed)), ct_sha);
    assert_eq!(
        hex::encode(&sealed[sealed.len() - 16..]),
        "87746de6767db54bd904268217b35ba2"
    );
    let mut rng = XorShift(0x1234_5678);
    let split = random_split(&mut rng, pt.len());
    let streamed = encrypt_stream(&link12(), &pt, &split);
    assert_eq!(hex::encode(Sha256::digest(&streamed)), ct_sha);
    let split = random_split(&mut rng, sealed.len());
    assert_eq!(decrypt_stream(&link12(), &sealed, &split).unwrap(), pt);
    assert_eq!(open(&link12(), &sealed).unwrap(), pt);
}

#[test]
fn random_sizes_and_splits_agree_with_aes_gcm() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let len = match round % 3 {
            0 => rng.below(64),
            1 => rng.below(1_000),
            _ => rng.below(200_000),
        };
        let key: [u8; 32] = rng.bytes(32).try_into().unwrap();
        let legacy = round % 5 == 0;
        let link = if legacy {
            AesGcmUrl::with_iv(
                &XEP_HTTPS.parse().unwrap(),
                key,
                Iv::Legacy(rng.bytes(16).try_into().unwrap()),
            )
            .unwrap()
        } else {
            AesGcmUrl::new(
                &XEP_HTTPS.parse().unwrap(),
                key,
                rng.bytes(12).try_into().unwrap(),
            )
            .unwrap()
        };
        let pt = rng.bytes(len);
        let split = random_split(&mut rng, len);
        let streamed = encrypt_stream(&link, &pt, &split);
        if let Iv::Standard(iv) = link.iv() {
            assert_eq!(streamed, seal(&key, iv, &pt), "round {round}, len {len}");
        }
        assert_eq!(open(&link, &streamed).unwrap(), pt, "round {round}");
        let split = random_split(&mut rng, streamed.len());
        assert_eq!(
            decrypt_stream(&link, &streamed, &split).unwrap(),
            pt,
            "round {round}"
        );
    }
}

#[test]
fn every_flipped_bit_fails() {
    let sealed = hex::decode(FOX_SEALED).unwrap();
    let mut rng = XorShift(7);
    for byte in 0..sealed.len() {
        for bit in 0..8 {
            let mut bad = sealed.clone();
            bad[byte] ^= 1 << bit;
            assert_eq!(
                open(&link12(), &bad),
                Err(DecryptError::TagMismatch),
                "byte {byte}"
            );
            let split = random_split(&mut rng, bad.len());
            assert_eq!(
                decrypt_stream(&link12(), &bad, &split),
                Err(DecryptError::TagMismatch)
            );
        }
    }
    // A wrong key or IV fails too.
    let other = AesGcmUrl::new(&XEP_HTTPS.parse().unwrap(), [0; 32], iv12()).unwrap();
    assert_eq!(open(&other, &sealed), Err(DecryptError::TagMismatch));
}

#[test]
fn truncated_and_cut_inputs() {
    let sealed = hex::decode(FOX_SEALED).unwrap();
    for cut in 0..16 {
        assert_eq!(
            open(&link12(), &sealed[..cut]),
            Err(DecryptError::Truncated)
        );
        assert_eq!(
            decrypt_stream(&link12(), &sealed[..cut], &[1, 2]),
            Err(DecryptError::Truncated)
        );
    }
    // Input ending inside the tag: the held-back bytes are then the wrong ones.
    for cut in 16..sealed.len() {
        assert_eq!(
            open(&link12(), &sealed[..cut]),
            Err(DecryptError::TagMismatch)
        );
        assert_eq!(
            decrypt_stream(&link12(), &sealed[..cut], &[cut / 2]),
            Err(DecryptError::TagMismatch)
        );
    }
    // Extra bytes after the tag.
    let mut long = sealed.clone();
    long.push(0);
    assert_eq!(
        decrypt_stream(&link12(), &long, &[30]),
        Err(DecryptError::TagMismatch)
    );
}

#[test]
fn decryptor_holds_back_exactly_the_tag() {
    let sealed = hex::decode(FOX_SEALED).unwrap();
    let mut dec = Decryptor::for_link(&link12());
    let mut out = Vec::new();
    assert_eq!(dec.update(&sealed[..16], &mut out).unwrap(), 0);
    assert_eq!(dec.update(&sealed[16..20], &mut out).unwrap(), 4);
    assert_eq!(dec.update(&sealed[20..], &mut out).unwrap(), 39);
    assert_eq!(dec.len(), 43);
    assert_eq!(dec.finish().unwrap().len(), 43);
    assert_eq!(out, FOX);
}

#[test]
fn length_limit_is_an_error_not_a_panic() {
    let mut enc = Encryptor::new(&key(), &iv12());
    enc.core_mut().skip_for_test(MAX_PLAINTEXT_LEN - 16);
    let mut buf = [0u8; 17];
    assert_eq!(enc.encrypt_in_place(&mut buf), Err(TooLong));
    assert_eq!(buf, [0; 17], "nothing changes on error");
    let mut out = vec![1];
    assert_eq!(enc.update(&buf, &mut out), Err(TooLong));
    assert_eq!(out, [1]);
    assert!(enc.encrypt_in_place(&mut buf[..16]).is_ok());
    assert_eq!(enc.update(&[], &mut out), Ok(()));
    assert_eq!(enc.update(&[0], &mut out), Err(TooLong));

    let mut dec = Decryptor::new(&key(), &Iv::Standard(iv12()));
    dec.open.core_mut().skip_for_test(MAX_PLAINTEXT_LEN);
    let mut out = Vec::new();
    assert_eq!(dec.update(&[0; 16], &mut out), Ok(0));
    assert_eq!(dec.update(&[0; 1], &mut out), Err(DecryptError::TooLong));
    assert!(out.is_empty());

    assert_eq!(
        encrypted_len(MAX_PLAINTEXT_LEN),
        Some(MAX_PLAINTEXT_LEN + 16)
    );
    assert_eq!(encrypted_len(MAX_PLAINTEXT_LEN + 1), None);
    assert_eq!(encrypted_len(u64::MAX), None);
    assert_eq!(encrypted_len(0), Some(16));
}

#[test]
fn xep0454_example_link() {
    let link = link12();
    assert_eq!(link.https_url().as_str(), XEP_HTTPS);
    assert_eq!(link.https_url().fragment(), None);
    assert_eq!(link.iv(), &Iv::Standard(iv12()));
    assert_eq!(link.key(), &key());
    assert_eq!(link.to_string(), XEP_LINK);
    let built = AesGcmUrl::new(&XEP_HTTPS.parse().unwrap(), key(), iv12()).unwrap();
    assert_eq!(built, link);
    assert_eq!(built.to_string(), XEP_LINK);
}

#[test]
fn legacy_link_round_trips_losslessly() {
    let text = format!("aesgcm://download.montague.tld/a/b.jpg#{IV16}{KEY}");
    let link: AesGcmUrl = text.parse().unwrap();
    assert_eq!(link.iv(), &Iv::Legacy(iv16()));
    assert_eq!(link.to_string(), text);
    assert_eq!(link16().to_string().len(), XEP_LINK.len() + 8);
}

#[test]
fn uppercase_hex_and_scheme_are_read_and_written_canonically() {
    let upper = format!(
        "AESGCM://download.montague.tld/x.jpg#{}{}",
        IV12.to_uppercase(),
        KEY.to_uppercase()
    );
    let link: AesGcmUrl = upper.parse().unwrap();
    assert_eq!(
        link.to_string(),
        format!("aesgcm://download.montague.tld/x.jpg#{IV12}{KEY}")
    );
    // Mixed case and a normalised host.
    let mixed = format!(
        "aesgcm://Download.Montague.TLD/x.jpg#{}{}",
        IV12,
        KEY.to_uppercase()
    );
    let link2: AesGcmUrl = mixed.parse().unwrap();
    assert_eq!(link2, link);
}

#[test]
fn bad_links_are_refused() {
    let frag = format!("{IV12}{KEY}");
    let cases: Vec<(String, LinkError)> = vec![
        (format!("https://h.example/x#{frag}"), LinkError::NotAesGcm),
        (format!("aesgcm:h.example/x#{frag}"), LinkError::NotAesGcm),
        (format!("aesgcm//h.example/x#{frag}"), LinkError::NotAesGcm),
        ("aesgcm://h.example/x".into(), LinkError::MissingFragment),
        (
            format!("aesgcm://h.example/x#{}", &frag[..86]),
            LinkError::FragmentLength(86),
        ),
        (
            format!("aesgcm://h.example/x#{frag}0"),
            LinkError::FragmentLength(89),
        ),
        (
            format!("aesgcm://h.example/x#{frag}00000000000"),
            LinkError::FragmentLength(99),
        ),
        ("aesgcm://h.example/x#".into(), LinkError::FragmentLength(0)),
        (
            format!("aesgcm://h.example/x#{}zz", &frag[..86]),
            LinkError::FragmentNotHex,
        ),
        (
            format!("aesgcm://h.example/x#{}é", &frag[..86]),
            LinkError::FragmentNotHex,
        ),
        (
            format!("aesgcm://h.example/x#{}##", &frag[..86]),
            LinkError::FragmentNotHex,
        ),
        (
            format!("aesgcm://#{frag}"),
            LinkError::Url(url::ParseError::EmptyHost),
        ),
        (
            format!("aesgcm://h.example:99999/x#{frag}"),
            LinkError::Url(url::ParseError::InvalidPort),
        ),
    ];
    for (text, want) in cases {
        let got = text.parse::<AesGcmUrl>().unwrap_err();
        assert_eq!(got, want, "{text}");
        assert!(!got.to_string().contains(KEY), "{got}");
    }
}

#[test]
fn only_https_urls_without_fragment_become_links() {
    let http: url::Url = "http://h.example/x.jpg".parse().unwrap();
    assert_eq!(
        AesGcmUrl::new(&http, key(), iv12()),
        Err(LinkError::NotHttps)
    );
    let ftp: url::Url = "ftp://h.example/x.jpg".parse().unwrap();
    assert_eq!(
        AesGcmUrl::new(&ftp, key(), iv12()),
        Err(LinkError::NotHttps)
    );
    let frag: url::Url = "https://h.example/x.jpg#top".parse().unwrap();
    assert_eq!(
        AesGcmUrl::new(&frag, key(), iv12()),
        Err(LinkError::HasFragment)
    );
    let empty_frag: url::Url = "https://h.example/x.jpg#".parse().unwrap();
    assert_eq!(
        AesGcmUrl::new(&empty_frag, key(), iv12()),
        Err(LinkError::HasFragment)
    );
    // A query and a port survive the swap unchanged.
    let q: url::Url = "https://h.example:8443/x.jpg?a=b".parse().unwrap();
    let link = AesGcmUrl::new(&q, key(), iv12()).unwrap();
    assert!(link
        .to_string()
        .starts_with("aesgcm://h.example:8443/x.jpg?a=b#8c3d"));
    assert_eq!(link.https_url(), q);
    assert_eq!(link.to_string().parse::<AesGcmUrl>().unwrap(), link);
}

#[test]
fn debug_hides_key_iv_and_query() {
    let q: url::Url = "https://h.example/x.jpg?sig=SECRET".parse().unwrap();
    for link in [
        link12(),
        link16(),
        AesGcmUrl::new(&q, key(), iv12()).unwrap(),
    ] {
        let shown = format!("{link:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains(&KEY[..16]),
            "{shown}"
        );
        assert!(!shown.contains(IV12), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("h.example") || shown.contains("montague"),
            "{shown}"
        );
    }
    let enc = Encryptor::new(&key(), &iv12());
    assert!(!format!("{enc:?}").contains("68"));
    let dec = Decryptor::new(&key(), &Iv::Standard(iv12()));
    assert!(format!("{dec:?}").starts_with("Decryptor"));
}

#[test]
fn generate_uses_the_rng() {
    struct Counter(u8);
    impl rand_core::TryRng for Counter {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Counter {}
    #[derive(Debug)]
    struct Broken;
    impl rand_core::TryRng for Broken {
        type Error = std::io::Error;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            Err(std::io::Error::other("no entropy"))
        }
    }
    impl rand_core::TryCryptoRng for Broken {}

    let get: url::Url = XEP_HTTPS.parse().unwrap();
    let link = AesGcmUrl::generate(&get, &mut Counter(0)).unwrap();
    let want_key: Vec<u8> = (1..=32).collect();
    let want_iv: Vec<u8> = (33..=44).collect();
    assert_eq!(link.key().as_slice(), want_key);
    assert_eq!(link.iv().as_bytes(), want_iv);
    assert_eq!(AesGcmUrl::generate(&get, &mut Broken), Err(LinkError::Rng));
    let http: url::Url = "http://h.example/x".parse().unwrap();
    assert_eq!(
        AesGcmUrl::generate(&http, &mut Counter(0)),
        Err(LinkError::NotHttps)
    );
}

#[test]
fn content_type_policy() {
    assert_eq!(
        ContentTypePolicy::OctetStream.content_type(Some("image/png")),
        OCTET_STREAM
    );
    assert_eq!(
        ContentTypePolicy::Original.content_type(Some("image/png")),
        "image/png"
    );
    assert_eq!(
        ContentTypePolicy::Original.content_type(Some("")),
        OCTET_STREAM
    );
}
