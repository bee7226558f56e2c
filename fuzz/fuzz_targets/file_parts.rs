//! Sealed file parts as a server (or anyone between it and the device)
//! might hand them over: any bytes, for a file of any size, under a real
//! key. Opening never panics, and nothing but the sealed parts themselves
//! ever opens — a forgery is refused, not written out.
#![no_main]

use conclave_e2ee::file::{FileKey, FileOpener, FileSealer};
use conclave_proto::file::{chunk_len, file_parts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size_byte, parts)) = data.split_first() else { return };
    // Small files, so that any number of parts is reachable.
    let size = u64::from(size_byte) * 97;
    let key = FileKey::generate();
    let mut opener = FileOpener::new(&key, size);
    for forged in parts.chunks(64) {
        assert!(opener.open_next(forged).is_err(), "a forged part opened");
    }
    // The real file still opens whole, and only whole.
    let plain: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut sealer = FileSealer::new(&key, size);
    let mut opener = FileOpener::new(&key, size);
    let mut start = 0;
    for part in 0..file_parts(size) {
        let len = chunk_len(size, part).unwrap() as usize;
        let sealed = sealer.seal_next(&plain[start..start + len]).unwrap();
        assert_eq!(opener.open_next(&sealed).unwrap(), &plain[start..start + len]);
        start += len;
    }
    opener.finish(&sealer.finish().unwrap()).unwrap();
});
