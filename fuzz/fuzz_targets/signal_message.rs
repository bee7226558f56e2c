//! Any bytes a participant may send over the signaling WebSocket: parsing
//! never panics, and whatever parses survives a round trip unchanged.
#![no_main]

use conclave_proto::signal::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = ClientMessage::from_json(text) {
        let again = serde_json::to_string(&message).expect("parsed messages serialise");
        assert_eq!(ClientMessage::from_json(&again).as_ref(), Ok(&message));
    }
});
