//! SDP offer/answer with one participant: its offers are answered unless
//! ours is outstanding (it is the polite peer and offers again), and our
//! offers carry which participant each forwarded track belongs to.

use std::panic::{catch_unwind, AssertUnwindSafe};

use conclave_proto::media::{PublishedTrack, MAX_PUBLISHED_TRACKS};
use conclave_proto::signal::{ErrorCode, ParticipantId, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer};

use super::{PeerKey, Sfu, SfuEvent};
use crate::MeetingKey;

impl Sfu {
    pub(super) fn offer(
        &mut self,
        meeting: &MeetingKey,
        participant: ParticipantId,
        sdp: &str,
        tracks: Vec<PublishedTrack>,
    ) {
        let Some(&key) = self.by_participant.get(&(meeting.clone(), participant)) else { return };
        let peer = self.peers.get_mut(&key).expect("indexed peer");
        if peer.pending.is_some() {
            // Glare: the participant's app yields to the server's offer and
            // offers again after answering it (perfect negotiation).
            tracing::debug!(participant, "client offer crossed the server's; ignored");
            return;
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
                // Our own offer, if any was being built, is void: redo it.
                peer.settle_offer(false);
                let message = ServerMessage::MediaAnswer { sdp: answer.to_sdp_string() };
                self.events.push_back(SfuEvent::Signal { meeting: meeting.clone(), participant, message });
                self.dirty.push(key);
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
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(answer) => answer,
            Err(err) => {
                peer.settle_offer(false);
                return self.signal_error(key, "media_answer", format!("not a valid SDP answer: {err}"));
            }
        };
        match catch_unwind(AssertUnwindSafe(|| peer.rtc.sdp_api().accept_answer(pending, answer))) {
            Ok(Ok(())) => {
                peer.settle_offer(true);
                self.dirty.push(key);
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
