//! The session's side of the SDP negotiation, as the polite peer: it
//! offers what it publishes and answers the server's offers; when two
//! offers cross it drops its own, and offers again once it has answered.

use conclave_proto::media::{ForwardedTrack, MediaSource, PublishedTrack};
use conclave_proto::signal::ClientMessage;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Simulcast, SimulcastLayer};
use str0m::Candidate;

use super::machine::{Datagram, MediaSession};
use super::sending::Outgoing;

/// Our outstanding offer: str0m's handle, the sources it adds (by mid) and
/// the sources it stops.
pub(super) type PendingOffer = (SdpPendingOffer, Vec<(MediaSource, Mid)>, Vec<MediaSource>);

impl MediaSession {
    /// The server's offer (what it forwards to us): answered at once.
    pub(super) fn on_offer(&mut self, now: Instant, sdp: &str, tracks: Vec<ForwardedTrack>) {
        self.stats.negotiations += 1;
        // The polite peer: a crossing offer of ours is dropped and redone.
        self.pending = None;
        let Ok(offer) = SdpOffer::from_sdp_string(sdp) else { return };
        if let Ok(answer) = self.rtc.mutate(now, |rtc| rtc.sdp_api().accept_offer(offer)) {
            self.stats.tracks = tracks.into_iter().map(|t| (t.mid.clone(), t)).collect();
            self.signals.push_back(ClientMessage::MediaAnswer { sdp: answer.to_sdp_string() });
        }
        self.offer_changes(now);
    }

    /// The server's answer to our offer: what it adds is published from now on.
    pub(super) fn on_answer(&mut self, now: Instant, sdp: &str) {
        self.stats.negotiations += 1;
        if let (Some((pending, added, stopped)), Ok(answer)) = (self.pending.take(), SdpAnswer::from_sdp_string(sdp)) {
            if let Some(turn) = self.turn.as_mut().filter(|t| t.peer.is_none()) {
                if let Some(server) = first_candidate(sdp) {
                    self.transmits.push_back(Datagram { destination: turn.server, contents: turn.bind(server) });
                }
            }
            if self.rtc.mutate(now, |rtc| rtc.sdp_api().accept_answer(pending, answer)).is_ok() {
                self.ready = true;
                for source in stopped {
                    self.published.remove(&source);
                }
                for (source, mid) in added {
                    let pt = self.payload_type(now, mid, source);
                    self.published.insert(source, Outgoing::new(mid, pt));
                }
            }
        }
        self.offer_changes(now);
    }

    /// Offers what changed in what we publish, if nothing is outstanding.
    pub(super) fn offer_changes(&mut self, now: Instant) {
        if self.pending.is_some() || self.options.await_offer {
            return;
        }
        let (id, options, wanted, published, ready) =
            (self.id, &self.options, &self.wanted, &self.published, self.ready);
        let changes = self.rtc.mutate(now, |rtc| {
            let mut api = rtc.sdp_api();
            let mut added = Vec::new();
            let mut stopped = Vec::new();
            for source in [MediaSource::Microphone, MediaSource::Camera, MediaSource::Screen] {
                match (wanted.contains(&source), published.get(&source)) {
                    (true, None) => {
                        let kind = if source == MediaSource::Microphone { MediaKind::Audio } else { MediaKind::Video };
                        let simulcast = (source == MediaSource::Camera && !options.simulcast.is_empty()).then(|| {
                            let mut layers = Simulcast::new();
                            for rid in &options.simulcast {
                                layers.add_send_layer(SimulcastLayer::new(rid));
                            }
                            layers
                        });
                        let stream = format!("p{id}");
                        let mid = api.add_media(
                            kind,
                            Direction::SendOnly,
                            Some(stream),
                            Some(source.as_str().into()),
                            simulcast,
                        );
                        added.push((source, mid));
                    }
                    (false, Some(out)) => {
                        api.set_direction(out.mid, Direction::Inactive);
                        stopped.push(source);
                    }
                    _ => {}
                }
            }
            if !ready && added.is_empty() && published.is_empty() {
                // Nothing to send: an inactive audio m-line gives the offer a
                // transport to set up, as the browser app's does.
                api.add_media(MediaKind::Audio, Direction::Inactive, None, None, None);
            }
            if !api.has_changes() {
                return None;
            }
            let (offer, pending) = api.apply()?;
            Some((offer, pending, added, stopped))
        });
        let Some((offer, pending, added, stopped)) = changes else { return };
        let mut tracks: Vec<PublishedTrack> =
            added.iter().map(|(source, mid)| PublishedTrack { mid: mid.to_string(), source: *source }).collect();
        tracks.extend(
            self.published.iter().map(|(source, out)| PublishedTrack { mid: out.mid.to_string(), source: *source }),
        );
        self.pending = Some((pending, added, stopped));
        self.signals.push_back(ClientMessage::MediaOffer { sdp: offer.to_sdp_string(), tracks });
    }

    /// The payload type negotiated for a source's codec on `mid`.
    fn payload_type(&mut self, now: Instant, mid: Mid, source: MediaSource) -> Option<Pt> {
        let codec = if source == MediaSource::Microphone { Codec::Opus } else { Codec::Vp8 };
        self.rtc.mutate(now, |rtc| {
            let writer = rtc.writer(mid)?;
            let pt = writer.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt());
            pt
        })
    }
}

/// The address of the first ICE candidate in an SDP (the SFU's one port).
fn first_candidate(sdp: &str) -> Option<std::net::SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .find_map(|l| Candidate::from_sdp_string(l).ok())
        .map(|c| c.addr())
}
