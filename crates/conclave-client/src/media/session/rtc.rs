//! str0m's `Rtc` held to its run-loop rule: every mutation (a datagram, a
//! timeout, a frame written, a keyframe asked for, an SDP change) is
//! followed at once by a drain of `poll_output` until it returns a
//! `Timeout`, and what the drain yields waits here until the session takes
//! it. The `Rtc` is reachable only through [`DrainedRtc::mutate`], so no
//! input can skip its drain.
//!
//! str0m's documentation calls this the single-mutation invariant: two
//! mutations back to back leave the engine inconsistent. The participant
//! once fed a whole batch of received datagrams, and every simulcast layer
//! of a frame, before polling once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use str0m::net::Transmit;
use str0m::{Candidate, Event, Input, Output, PacerReason, Reason, Rtc};

/// Due timeouts handled within one drain before the rest wait for the
/// next wake-up (which is then at once), so a drain always ends.
const DUE_TIMEOUTS_PER_DRAIN: usize = 1024;

/// When to poll again after str0m reported an error instead of output.
const AFTER_AN_ERROR: Duration = Duration::from_millis(50);

pub(super) struct DrainedRtc {
    rtc: Rtc,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// When str0m next wants time, as its last drain said.
    deadline: Instant,
    /// Mutations made, and drains that reached `Timeout` after them: the
    /// two are equal whenever control is outside this type (unless str0m
    /// failed).
    mutations: u64,
    drains: u64,
}

impl DrainedRtc {
    /// A peer connection as a browser's would be, on the shared DTLS
    /// configuration (`conclave-dtls`), with its one local candidate.
    pub fn new(now: Instant, candidate: Candidate) -> Self {
        let rtc = Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(now);
        let mut drained =
            Self { rtc, transmits: VecDeque::new(), events: VecDeque::new(), deadline: now, mutations: 0, drains: 0 };
        drained.mutate(now, |rtc| {
            rtc.add_local_candidate(candidate);
        });
        drained
    }

    /// Makes one change to the `Rtc` at `now`, then drains it.
    pub fn mutate<R>(&mut self, now: Instant, change: impl FnOnce(&mut Rtc) -> R) -> R {
        let result = change(&mut self.rtc);
        self.mutations += 1;
        self.drain(now);
        result
    }

    /// Feeds str0m the time, if anything of it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline <= now {
            self.mutate(now, |rtc| rtc.handle_input(Input::Timeout(now)).is_ok());
        }
    }

    /// Polls until str0m waits for time. A timeout that is already due is
    /// handled within the drain: str0m's pacer releases one packet per
    /// timeout, so a frame's packets would otherwise leave one wake-up each.
    fn drain(&mut self, now: Instant) {
        let mut due_timeouts = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(transmit)) => self.transmits.push_back(transmit),
                Ok(Output::Event(event)) => self.events.push_back(event),
                Ok(Output::Timeout(at))
                    if is_due(at, now, self.rtc.last_timeout_reason()) && due_timeouts < DUE_TIMEOUTS_PER_DRAIN =>
                {
                    due_timeouts += 1;
                    // The pacer asks for the next microsecond, so that packets
                    // sent in one go still get distinct send times.
                    let _ = self.rtc.handle_input(Input::Timeout(at.max(now)));
                }
                Ok(Output::Timeout(at)) => {
                    self.deadline = at;
                    self.drains += 1;
                    return;
                }
                Err(_) => {
                    self.deadline = now + AFTER_AN_ERROR;
                    return;
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When str0m next wants [`handle_timeout`](Self::handle_timeout).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether every mutation so far was followed by a complete drain.
    #[cfg(test)]
    pub fn drained_after_every_mutation(&self) -> bool {
        self.mutations == self.drains
    }

    /// Whether str0m has nothing left to give: polled once more, it
    /// answers with a `Timeout` straight away (str0m produces new output
    /// only after an input).
    #[cfg(test)]
    pub fn has_nothing_pending(&mut self) -> bool {
        matches!(self.rtc.poll_output(), Ok(Output::Timeout(_)))
    }

    /// Feeds an input the way the old loop did, without draining: only to
    /// show that [`has_nothing_pending`](Self::has_nothing_pending) sees it.
    #[cfg(test)]
    pub fn handle_input_without_draining(&mut self, input: Input) {
        let _ = self.rtc.handle_input(input);
        self.mutations += 1;
    }
}

/// Whether a timeout str0m asked for is to be handled now: it is past, or
/// it is the pacer's "at once".
fn is_due(at: Instant, now: Instant, reason: Reason) -> bool {
    at <= now || reason == Reason::Pacer(PacerReason::Immediate)
}
