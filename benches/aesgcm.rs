//! Criterion benchmarks of the streaming AES-256-GCM of `xmpp_upload::aesgcm`, each against
//! its floor in the same run: aes-gcm 0.11 in one call over the same 16 MiB, in place.
//!
//! * `aesgcm/encrypt_stream`: `Encryptor::encrypt_in_place` over 64 KiB chunks, then
//!   `finish`, vs `aesgcm/floor_aes_gcm_encrypt` (`encrypt_inout_detached`);
//! * `aesgcm/decrypt_stream`: `Decryptor::update` over 64 KiB chunks of `ciphertext ‖ tag`
//!   into a reused output buffer, then `finish`, vs `aesgcm/floor_aes_gcm_decrypt`
//!   (`decrypt_inout_detached` on a fresh copy of the ciphertext, the copy not timed).
//!
//! Run: `cargo bench --bench aesgcm --features aesgcm`.
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xmpp_upload::aesgcm::{self, Decryptor, Encryptor, Iv};

const SIZE: usize = 16 << 20;
const CHUNK: usize = 64 << 10;
const KEY: [u8; 32] = [0x42; 32];
const IV: [u8; 12] = [0x24; 12];

fn plaintext() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 251) as u8).collect()
}

fn bench(c: &mut Criterion) {
    let pt = plaintext();
    let sealed = aesgcm::seal(&KEY, &IV, &pt);
    let (ct, tag) = sealed.split_at(SIZE);
    let tag: [u8; 16] = tag.try_into().unwrap();
    let floor = Aes256Gcm::new(&KEY.into());

    let mut g = c.benchmark_group("aesgcm");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(20);

    let mut buf = pt.clone();
    g.bench_function("floor_aes_gcm_encrypt", |b| {
        b.iter(|| {
            black_box(
                floor
                    .encrypt_inout_detached(&IV.into(), b"", buf.as_mut_slice().into())
                    .unwrap(),
            )
        })
    });

    g.bench_function("encrypt_stream", |b| {
        b.iter(|| {
            let mut enc = Encryptor::new(&KEY, &IV);
            for chunk in buf.chunks_mut(CHUNK) {
                enc.encrypt_in_place(chunk).unwrap();
            }
            black_box(enc.finish())
        })
    });
    let mut out = Vec::with_capacity(CHUNK + 16);
    g.bench_function("floor_aes_gcm_decrypt", |b| {
        b.iter_batched_ref(
            || ct.to_vec(),
            |data| {
                floor
                    .decrypt_inout_detached(
                        &IV.into(),
                        b"",
                        data.as_mut_slice().into(),
                        (&tag).into(),
                    )
                    .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("decrypt_stream", |b| {
        b.iter(|| {
            let mut dec = Decryptor::new(&KEY, &Iv::Standard(IV));
            for chunk in sealed.chunks(CHUNK) {
                out.clear();
                dec.update(chunk, &mut out).unwrap();
                black_box(&out);
            }
            dec.finish().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
