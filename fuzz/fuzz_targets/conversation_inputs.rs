//! Any sequence of requests a conversation may be handed, as JSON: members
//! of every role and strangers, devices and their MLS messages, in any
//! order. Deciding never panics, the log stays gapless, a device that
//! reads is a member's, and the state survives storage unchanged.
#![no_main]

use conclave_conversation::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((encrypted, inputs)) = serde_json::from_slice::<(bool, Vec<Input>)>(data) else { return };
    let person = |account: &str| Newcomer {
        account: account.into(),
        devices: [format!("{account}-1"), format!("{account}-2")].into_iter().collect(),
        external: false,
    };
    let encryption = if encrypted { Encryption::Mls } else { Encryption::Plain };
    let founded =
        Conversation::found(Kind::Group, encryption, ConversationPolicy::default(), person("a"), vec![person("b")], 0);
    let (mut conversation, effects) = founded.expect("a valid founding");
    let mut last = effects.len() as u64;
    for (at, input) in inputs.into_iter().enumerate() {
        let Ok(effects) = conversation.handle(input, at as i64) else { continue };
        for effect in effects {
            if let Effect::Append(entry) = effect {
                last += 1;
                assert_eq!(entry.seq, last, "the log has no gap");
            }
        }
        for device in conversation.readers().keys() {
            assert!(conversation.owner_of(device).is_some(), "{device} reads but is no member's");
        }
    }
    let stored = serde_json::to_string(&conversation).expect("a conversation serialises");
    let back: Conversation = serde_json::from_str(&stored).expect("and reads back");
    assert_eq!(back, conversation);
});
