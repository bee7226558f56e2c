//! What a watched public source serves, as arbitrary bytes: parsing never
//! panics and stays within its limits, and finding meeting references in
//! any post's text never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(posts) = conclave_feeds::parse(data) {
        assert!(posts.len() <= conclave_feeds::MAX_POSTS);
        for post in posts {
            let _ = conclave_feeds::references(&post.text, "https://meet.example.org");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = conclave_feeds::references(text, "https://meet.example.org");
    }
});
