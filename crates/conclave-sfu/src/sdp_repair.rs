//! Repairs to the SDP str0m writes, applied to every description the SFU
//! emits before anything else reads it.
//!
//! str0m 0.24 writes a section it rejects (a codec it does not take) or has
//! stopped (a forwarded track whose owner left) as `m=video 0
//! UDP/TLS/RTP/SAVPF ` with no format, which RFC 8866 forbids and Chromium
//! refuses with the whole description: an answer like that costs the
//! participant its audio too, and an offer like that leaves every later
//! change to its media unnegotiated. Later str0m releases write `0`, as this
//! does; their crypto providers are not yet published for the build Conclave
//! uses.

/// `sdp` with a format on every `m=` line closed with port 0 that has none.
pub(crate) fn formats_on_rejected_sections(sdp: &str) -> String {
    let mut fixed = String::with_capacity(sdp.len() + 8);
    for line in sdp.split_inclusive("\r\n") {
        let content = line.trim_end_matches("\r\n");
        let fields: Vec<&str> = content.split(' ').collect();
        if content.starts_with("m=") && fields.get(1) == Some(&"0") && fields[3..].iter().all(|f| f.is_empty()) {
            fixed.push_str(&fields[..3].join(" "));
            fixed.push_str(" 0\r\n");
        } else {
            fixed.push_str(line);
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_section_gets_a_format_and_nothing_else_changes() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 0 UDP/TLS/RTP/SAVPF \r\na=mid:1\r\n";
        assert_eq!(
            formats_on_rejected_sections(answer),
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:1\r\n",
        );
        let valid = "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n";
        assert_eq!(formats_on_rejected_sections(valid), valid);
    }
}
