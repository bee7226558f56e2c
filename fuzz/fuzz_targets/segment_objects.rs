//! Segment objects as an organisation's bucket might hand them back: any
//! bytes. Reading never panics; what reads is in order, and written again
//! it reads back the same.
#![no_main]

use conclave_blob::Segment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(segment) = Segment::decode(data) else { return };
    assert!(segment.entries.windows(2).all(|pair| pair[0].0 < pair[1].0), "entries in order");
    for (seq, body) in &segment.entries {
        assert_eq!(segment.body(*seq), Some(body.as_str()));
    }
    assert_eq!(Segment::decode(&segment.encode()).as_ref(), Ok(&segment));
});
