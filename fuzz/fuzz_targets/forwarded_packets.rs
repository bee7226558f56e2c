//! What the SFU reads of every forwarded video packet, on arbitrary
//! payloads: the VP8 descriptor reader and the renumbering a layer switch
//! applies must never panic, and a renumbered packet keeps its length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, payload)) = data.split_first() else { return };
    conclave_sfu::read_and_renumber_for_fuzzing(payload, u16::from(seed) * 257, seed);
});
