//! SFrame throughput on one core: `cargo bench -p conclave-e2ee`.
//!
//! Frames of a video keyframe's size (50 KB) and of an audio packet (160
//! B), per suite, encrypted and decrypted; beside the floor measured in the
//! same run, the bare AES-GCM seal of the same bytes, which is the least an
//! SFrame implementation can cost. Prints the median of 7 runs.

use std::time::Instant;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use conclave_e2ee::sframe::{CipherSuite, SframeReceiver, SframeSender};

const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// GB/s of `f` over `total` bytes.
fn rate(total: usize, f: impl Fn()) -> f64 {
    let samples = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            total as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(samples)
}

fn main() {
    println!("| frame | suite | encrypt GB/s | decrypt GB/s | floor: bare AES-GCM GB/s | encrypt / floor |");
    println!("|---|---|---|---|---|---|");
    for (label, size, count) in [("50 KB video", 50_000usize, 2_000usize), ("160 B audio", 160, 200_000)] {
        let plaintext = vec![0x5a; size];
        let total = size * count;
        let floor = {
            let cipher = aes_gcm::Aes128Gcm::new_from_slice(&[7; 16]).unwrap();
            let nonce = aes_gcm::Nonce::from_slice(&[1; 12]);
            rate(total, || {
                let mut buf = Vec::with_capacity(size + 16);
                for _ in 0..count {
                    buf.clear();
                    buf.extend_from_slice(&plaintext);
                    cipher.encrypt_in_place(nonce, b"", &mut buf).unwrap();
                }
            })
        };
        for id in [4u16, 5, 1] {
            let suite = CipherSuite::from_id(id).unwrap();
            let base = [9u8; 32];
            let frames: Vec<Vec<u8>> = {
                let mut s = SframeSender::new(suite, 3, &base);
                (0..count).map(|_| s.encrypt(&plaintext, b"").unwrap()).collect()
            };
            let encrypt = rate(total, || {
                let mut s = SframeSender::new(suite, 3, &base);
                for _ in 0..count {
                    std::hint::black_box(s.encrypt(&plaintext, b"").unwrap());
                }
            });
            let decrypt = rate(total, || {
                let mut r = SframeReceiver::default();
                r.add_key(suite, 3, &base);
                for f in &frames {
                    std::hint::black_box(r.decrypt(f, b"").unwrap());
                }
            });
            println!("| {label} | {suite:?} | {encrypt:.2} | {decrypt:.2} | {floor:.2} | {:.2} |", encrypt / floor);
        }
    }
}
