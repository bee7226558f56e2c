//! SDP offer/answer with one participant: its offers are answered unless
//! ours is outstanding (it is the polite peer and offers again), and our
//! offers carry which participant each forwarded track belongs to.

use std::panic::{catch_unwind, AssertUnwindSafe};

use conclave_proto::media::{PublishedTrack, MAX_PUBLISHED_TRACKS};
use conclave_proto::signal::{ErrorCode, ParticipantId, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer};

use super::{PeerKey, Sfu, SfuEvent};
use crate::MeetingKey;

/// How long the server's offer waits for its answer before it is
/// withdrawn and made again: an offer lost on the way (signaling that
/// dropped and came back) must not hold the participant's media forever.
pub(super) const OFFER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

impl Sfu {
    pub(super) fn offer(
        &mut self,
        meeting: &MeetingKey,
        participant: ParticipantId,
        sdp: &str,
        tracks: Vec<PublishedTrack>,
    ) {
        let Some(mut key) = self.by_participant.get(&(meeting.clone(), participant)).copied() else {
            // The room let the offer through, so the seat is admitted; a
            // session is on its way or already gone with the seat. Either
            // way the participant hears why nothing will answer.
            let message = ServerMessage::error(
                ErrorCode::InvalidMedia,
                "no media session for this seat; offer again once admitted",
                Some("media_offer"),
            );
            self.events.push_back(SfuEvent::Signal { meeting: meeting.clone(), participant, message });
            return;
        };
        let fingerprint = dtls_fingerprint(sdp);
        let peer = &self.peers[&key];
        if peer.remote_fingerprint.is_some() && fingerprint.is_some() && peer.remote_fingerprint != fingerprint {
            // A new peer connection (its own DTLS certificate) on the same
            // seat: the app closed the old one. It gets a fresh session;
            // the old one's offer, if any, was never its to answer.
            tracing::info!(participant, "a new peer connection; replacing the media session");
            let rights = peer.rights;
            self.stats.sessions_replaced += 1;
            self.remove_peer(key);
            self.admit(self.now, meeting.clone(), participant, rights);
            key = self.by_participant[&(meeting.clone(), participant)];
        }
        let peer = self.peers.get_mut(&key).expect("indexed peer");
        if peer.withdraw_unanswered_offer(self.now, OFFER_PATIENCE) {
            tracing::info!(participant, "the server's offer went unanswered; the participant's is taken");
        }
        if peer.pending.is_some() {
            // Glare: the participant's app yields to the server's offer and
            // offers again after answering it (perfect negotiation).
            tracing::debug!(participant, "client offer crossed the server's; ignored");
            return;
        }
        let offered = crate::peer::mids(sdp);
        if !keeps_sections(&peer.negotiated_mids, &offered) {
            // str0m would answer with the sections it has, not the offer's,
            // which no browser accepts.
            let message = "the offer drops or reorders media sections negotiated before; \
                           a peer connection never removes one (start a new one instead)";
            return self.signal_error(key, "media_offer", message.to_owned());
        }
        if tracks.len() > MAX_PUBLISHED_TRACKS {
            return self.signal_error(key, "media_offer", format!("at most {MAX_PUBLISHED_TRACKS} tracks"));
        }
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(offer) => offer,
            Err(err) => return self.signal_error(key, "media_offer", format!("not a valid SDP offer: {err}")),
        };
        for track in tracks {
            peer.declared.insert(track.mid, track.source);
        }
        let answer = catch_unwind(AssertUnwindSafe(|| peer.rtc.sdp_api().accept_offer(offer)));
        match answer {
            Ok(Ok(answer)) => {
                peer.ready = true;
                peer.remote_fingerprint = fingerprint;
                peer.negotiated_mids = offered;
                if let Some(decodes) = crate::codecs::received_video_codecs(sdp) {
                    peer.decodes = Some(decodes);
                }
                // Our own offer, if any was being built, is void: redo it.
                peer.settle_offer(false);
                let answer = answer.to_sdp_string();
                #[cfg(feature = "test-hooks")]
                crate::sdp_grammar::assert_answer_is_valid(sdp, &answer);
                let message = ServerMessage::MediaAnswer { sdp: answer };
                self.events.push_back(SfuEvent::Signal { meeting: meeting.clone(), participant, message });
                self.dirty.push(key);
                // After the answer: a publisher told to change codec offers again.
                self.choose_codec(meeting);
            }
            Ok(Err(err)) => self.signal_error(key, "media_offer", format!("offer refused: {err}")),
            Err(_) => self.fault(key, "accepting an offer"),
        }
    }

    pub(super) fn answer(&mut self, meeting: &MeetingKey, participant: ParticipantId, sdp: &str) {
        let Some(&key) = self.by_participant.get(&(meeting.clone(), participant)) else { return };
        let peer = self.peers.get_mut(&key).expect("indexed peer");
        let Some(pending) = peer.pending.take() else {
            return; // A stale answer to an offer that was withdrawn.
        };
        let fingerprint = dtls_fingerprint(sdp);
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(answer) => answer,
            Err(err) => {
                peer.settle_offer(false);
                return self.signal_error(key, "media_answer", format!("not a valid SDP answer: {err}"));
            }
        };
        match catch_unwind(AssertUnwindSafe(|| peer.rtc.sdp_api().accept_answer(pending, answer))) {
            Ok(Ok(())) => {
                peer.remote_fingerprint = fingerprint;
                // An answer has its offer's sections, in the same order.
                peer.negotiated_mids = crate::peer::mids(sdp);
                if let Some(decodes) = crate::codecs::received_video_codecs(sdp) {
                    peer.decodes = Some(decodes);
                }
                peer.settle_offer(true);
                self.dirty.push(key);
                self.choose_codec(meeting);
            }
            Ok(Err(err)) => {
                peer.settle_offer(false);
                self.signal_error(key, "media_answer", format!("answer refused: {err}"));
            }
            Err(_) => self.fault(key, "accepting an answer"),
        }
    }

    pub(super) fn signal_error(&mut self, key: PeerKey, request: &str, message: String) {
        let peer = &self.peers[&key];
        let message = ServerMessage::error(ErrorCode::InvalidMedia, message, Some(request));
        self.events.push_back(SfuEvent::Signal {
            meeting: peer.meeting.clone(),
            participant: peer.participant,
            message,
        });
    }
}

/// Whether an offer's sections (`offered`, by mid) keep every section
/// negotiated before in its place: none removed, none moved. A section
/// whose mid is gone altogether may hold a new one (a browser reuses the
/// m-line of a stopped transceiver, as JSEP allows).
fn keeps_sections(negotiated: &[String], offered: &[String]) -> bool {
    offered.len() >= negotiated.len()
        && negotiated.iter().zip(offered).all(|(before, now)| before == now || !offered.contains(before))
}

/// The DTLS certificate fingerprint a description names (`a=fingerprint`,
/// the first one): what tells one peer connection from the next, since
/// each makes its own certificate.
fn dtls_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .map(|value| value.trim().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_keeps_the_sections_negotiated_before() {
        let mids = |list: &[&str]| list.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        let before = mids(&["0", "1", "a"]);
        assert!(keeps_sections(&before, &mids(&["0", "1", "a"])));
        assert!(keeps_sections(&before, &mids(&["0", "1", "a", "2"])), "sections added at the end");
        assert!(keeps_sections(&before, &mids(&["0", "3", "a"])), "a stopped section's m-line reused");
        assert!(!keeps_sections(&before, &mids(&["0", "1"])), "a section removed");
        assert!(!keeps_sections(&before, &mids(&["0", "a", "1"])), "sections moved");
        assert!(!keeps_sections(&before, &mids(&["1", "0", "a", "2"])), "sections moved");
    }

    #[test]
    fn the_first_fingerprint_names_the_peer_connection() {
        let sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\nm=audio 9 X 0\r\na=fingerprint:sha-256 EF:01\r\n";
        assert_eq!(dtls_fingerprint(sdp).as_deref(), Some("sha-256 ab:cd"));
        assert_eq!(dtls_fingerprint("v=0\r\n"), None);
    }
}
