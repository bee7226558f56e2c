//! Janus's VideoRoom, reached through Janus's HTTP API and presented to a
//! media session in Conclave's own signaling terms. This lets
//! `conclave loadtest media --sfu janus` drive Janus with the same
//! headless participants, frames and measurements as Conclave, so the two
//! servers can be compared under one load.
//!
//! A Janus participant is two peer connections: a publisher handle (we
//! offer, Janus answers) and a subscriber handle (Janus offers the feeds we
//! asked for, we answer). Every handle of a load test lives in one Janus
//! session whose events arrive through a single long poll.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_proto::signal::{ClientMessage, ErrorCode, ServerMessage};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::signaling::{SignalChannel, SignalError};

#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error("Janus is unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("Janus refused {request}: {reason}")]
    Refused { request: String, reason: String },
    #[error("timed out waiting for Janus to {0}")]
    Timeout(String),
}

type Events = mpsc::UnboundedSender<Value>;

/// One Janus session on a server, shared by every handle the load test opens.
pub struct Janus {
    http: reqwest::Client,
    /// `http://host:port/janus/<session>`.
    session_url: String,
    handles: Mutex<HashMap<u64, Events>>,
    transactions: AtomicU64,
    poller: Mutex<Option<JoinHandle<()>>>,
}

impl Janus {
    /// Creates a session on the Janus at `base` (`http://127.0.0.1:8088/janus`)
    /// and starts polling its events.
    pub async fn connect(base: &str) -> Result<Arc<Self>, JanusError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(90)).build()?;
        let base = base.trim_end_matches('/').to_owned();
        let created =
            post(&http, &base, json!({"janus": "create", "transaction": "create"}), "create a session").await?;
        let id = created["data"]["id"].as_u64().ok_or_else(|| refused("create a session", &created))?;
        let janus = Arc::new(Self {
            http,
            session_url: format!("{base}/{id}"),
            handles: Mutex::new(HashMap::new()),
            transactions: AtomicU64::new(1),
            poller: Mutex::new(None),
        });
        let poller = tokio::spawn(poll_events(Arc::downgrade(&janus), janus.http.clone(), janus.session_url.clone()));
        *janus.poller.lock().expect("poller lock") = Some(poller);
        Ok(janus)
    }

    /// Attaches a VideoRoom handle; its events arrive on the receiver.
    async fn attach(&self) -> Result<(u64, mpsc::UnboundedReceiver<Value>), JanusError> {
        let body = json!({"janus": "attach", "plugin": "janus.plugin.videoroom", "transaction": self.transaction()});
        let attached = post(&self.http, &self.session_url, body, "attach").await?;
        let handle = attached["data"]["id"].as_u64().ok_or_else(|| refused("attach", &attached))?;
        let (events, receiver) = mpsc::unbounded_channel();
        self.handles.lock().expect("handles lock").insert(handle, events);
        Ok((handle, receiver))
    }

    /// A synchronous VideoRoom request (`create`, `destroy`, `listparticipants`):
    /// the plugin's answer.
    async fn request(&self, handle: u64, body: Value) -> Result<Value, JanusError> {
        let what = body["request"].as_str().unwrap_or("a request").to_owned();
        let message = json!({"janus": "message", "body": body, "transaction": self.transaction()});
        let answer = post(&self.http, &format!("{}/{handle}", self.session_url), message, &what).await?;
        let data = answer["plugindata"]["data"].clone();
        if data.get("error").is_some() {
            return Err(refused(&what, &data));
        }
        Ok(data)
    }

    /// An asynchronous VideoRoom request (`join`, `publish`, `start`): Janus
    /// acknowledges, and the outcome arrives as an event.
    async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<(), JanusError> {
        let what = body["request"].as_str().unwrap_or("a request").to_owned();
        let mut message = json!({"janus": "message", "body": body, "transaction": self.transaction()});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        post(&self.http, &format!("{}/{handle}", self.session_url), message, &what).await.map(drop)
    }

    async fn trickle_completed(&self, handle: u64) -> Result<(), JanusError> {
        let body = json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": self.transaction()});
        post(&self.http, &format!("{}/{handle}", self.session_url), body, "trickle").await.map(drop)
    }

    fn transaction(&self) -> String {
        format!("t{}", self.transactions.fetch_add(1, Ordering::Relaxed))
    }

    /// Creates a VideoRoom for `publishers` publishers, with the codecs
    /// Conclave's load uses (Opus, VP8) and no bitrate cap or recording.
    pub async fn create_room(self: &Arc<Self>, room: u64, publishers: usize) -> Result<(), JanusError> {
        let (handle, _) = self.attach().await?;
        let body = json!({
            "request": "create", "room": room, "publishers": publishers, "bitrate": 0,
            "fir_freq": 0, "audiocodec": "opus", "videocodec": "vp8", "record": false,
            "notify_joining": false, "permanent": false,
        });
        let created = self.request(handle, body).await;
        self.detach(handle).await;
        created.map(drop)
    }

    /// The feeds of `room` that Janus counts as publishing: their media set
    /// up on its side (ICE and DTLS done), which a subscription to them needs
    /// (Janus refuses to subscribe to a feed that is not yet).
    pub async fn publishing(self: &Arc<Self>, room: u64) -> Result<Vec<u64>, JanusError> {
        let (handle, _) = self.attach().await?;
        let listed = self.request(handle, json!({"request": "listparticipants", "room": room})).await;
        self.detach(handle).await;
        let listed = listed?;
        let participants = listed["participants"].as_array().ok_or_else(|| refused("listparticipants", &listed))?;
        Ok(participants.iter().filter(|p| p["publisher"] == true).filter_map(|p| p["id"].as_u64()).collect())
    }

    /// Joins `room` as publisher `feed`: a channel for a session that offers
    /// what it publishes.
    pub async fn publisher(self: &Arc<Self>, room: u64, feed: u64) -> Result<JanusChannel, JanusError> {
        let (handle, mut events) = self.attach().await?;
        let join =
            json!({"request": "join", "ptype": "publisher", "room": room, "id": feed, "display": format!("P{feed}")});
        self.message(handle, join, None).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .map_err(|_| JanusError::Timeout("join as a publisher".into()))?
                .ok_or_else(|| JanusError::Timeout("join as a publisher".into()))?;
            let data = &event["plugindata"]["data"];
            if data.get("error").is_some() {
                return Err(refused("join", data));
            }
            if data["videoroom"] == "joined" {
                break;
            }
        }
        Ok(JanusChannel { janus: self.clone(), handle, events, role: Role::Publisher })
    }

    /// Subscribes to `feeds` of `room` in one peer connection: a channel for
    /// a session that waits for Janus's offer (`MediaOptions::await_offer`).
    pub async fn subscriber(self: &Arc<Self>, room: u64, feeds: &[u64]) -> Result<JanusChannel, JanusError> {
        let (handle, events) = self.attach().await?;
        let streams: Vec<Value> = feeds.iter().map(|feed| json!({"feed": feed})).collect();
        let join = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
        self.message(handle, join, None).await?;
        Ok(JanusChannel { janus: self.clone(), handle, events, role: Role::Subscriber })
    }

    async fn detach(&self, handle: u64) {
        self.handles.lock().expect("handles lock").remove(&handle);
        let body = json!({"janus": "detach", "transaction": self.transaction()});
        let _ = post(&self.http, &format!("{}/{handle}", self.session_url), body, "detach").await;
    }

    /// Ends the session: Janus hangs up every handle of it.
    pub async fn destroy(&self) {
        if let Some(poller) = self.poller.lock().expect("poller lock").take() {
            poller.abort();
        }
        let body = json!({"janus": "destroy", "transaction": self.transaction()});
        let _ = post(&self.http, &self.session_url, body, "destroy the session").await;
    }
}

/// Posts a request to Janus; its reply, unless Janus says `error`.
async fn post(http: &reqwest::Client, url: &str, body: Value, what: &str) -> Result<Value, JanusError> {
    let reply: Value = http.post(url).json(&body).send().await?.error_for_status()?.json().await?;
    if reply["janus"] == "error" {
        return Err(refused(what, &reply["error"]));
    }
    Ok(reply)
}

fn refused(what: &str, reply: &Value) -> JanusError {
    let reason = reply.get("error").or_else(|| reply.get("reason")).unwrap_or(reply);
    JanusError::Refused { request: what.to_owned(), reason: reason.to_string() }
}

/// Long-polls the session's events and hands each to its handle, until the
/// session is gone.
async fn poll_events(janus: std::sync::Weak<Janus>, http: reqwest::Client, session_url: String) {
    let url = format!("{session_url}?maxev=100");
    loop {
        let reply = match http.get(&url).send().await {
            Ok(response) => response.json::<Value>().await,
            Err(e) => Err(e),
        };
        let Some(janus) = janus.upgrade() else { return };
        let events = match reply {
            Ok(Value::Array(events)) => events,
            Ok(event) => vec![event],
            Err(_) => {
                // Janus went away: closing every handle's events tells its session.
                janus.handles.lock().expect("handles lock").clear();
                return;
            }
        };
        let handles = janus.handles.lock().expect("handles lock");
        for event in events {
            if let Some(handle) = event["sender"].as_u64().and_then(|h| handles.get(&h)) {
                let _ = handle.send(event);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Subscriber,
}

/// One VideoRoom handle, as a media session's signaling: offers and answers
/// become Janus's `publish` and `start` with JSEP, and Janus's JSEP events
/// become `media_answer` and `media_offer`. Conclave's other messages have
/// no Janus counterpart and are dropped.
pub struct JanusChannel {
    janus: Arc<Janus>,
    handle: u64,
    events: mpsc::UnboundedReceiver<Value>,
    role: Role,
}

impl SignalChannel for JanusChannel {
    async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalError> {
        let (body, jsep) = match (self.role, message) {
            (Role::Publisher, ClientMessage::MediaOffer { sdp, .. }) => {
                (json!({"request": "publish"}), json!({"type": "offer", "sdp": sdp}))
            }
            (Role::Subscriber, ClientMessage::MediaAnswer { sdp }) => {
                (json!({"request": "start"}), json!({"type": "answer", "sdp": sdp}))
            }
            _ => return Ok(()),
        };
        let failed = |e: JanusError| SignalError::Protocol(e.to_string());
        self.janus.message(self.handle, body, Some(jsep)).await.map_err(failed)?;
        // Our SDP carries every candidate we have: tell Janus not to wait for more.
        self.janus.trickle_completed(self.handle).await.map_err(failed)
    }

    async fn next(&mut self, within: Duration) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| SignalError::Timeout("a Janus event".into()))?
                .ok_or(SignalError::Closed)?;
            if let Some(message) = translate(&event) {
                return Ok(message);
            }
        }
    }
}

/// The Conclave message a Janus event amounts to, if any.
fn translate(event: &Value) -> Option<ServerMessage> {
    let data = &event["plugindata"]["data"];
    if let Some(error) = data.get("error") {
        // Janus refusing a request fails the media session as ours would.
        let message = format!("Janus: {}", error.as_str().unwrap_or_default());
        return Some(ServerMessage::error(ErrorCode::MediaFailed, message, None));
    }
    if event["janus"] == "hangup" {
        return Some(ServerMessage::error(ErrorCode::MediaLost, "Janus hung up", None));
    }
    let sdp = event["jsep"]["sdp"].as_str()?.to_owned();
    match event["jsep"]["type"].as_str()? {
        "offer" => Some(ServerMessage::MediaOffer { sdp, tracks: Vec::new() }),
        "answer" => Some(ServerMessage::MediaAnswer { sdp }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsep_events_become_offers_and_answers() {
        let answer = json!({"janus": "event", "sender": 1, "plugindata": {"data": {"configured": "ok"}},
            "jsep": {"type": "answer", "sdp": "v=0"}});
        assert!(matches!(translate(&answer), Some(ServerMessage::MediaAnswer { sdp }) if sdp == "v=0"));
        let offer = json!({"janus": "event", "plugindata": {"data": {"videoroom": "attached"}},
            "jsep": {"type": "offer", "sdp": "v=0"}});
        assert!(matches!(translate(&offer), Some(ServerMessage::MediaOffer { .. })));
        let refused = json!({"janus": "event", "plugindata": {"data": {"error_code": 426, "error": "No such room"}}});
        assert!(matches!(translate(&refused), Some(ServerMessage::Error { code, message, .. })
            if code == "media_failed" && message == "Janus: No such room"));
        let webrtcup = json!({"janus": "webrtcup", "sender": 1});
        assert!(translate(&webrtcup).is_none());
    }
}
