//! The same load on a Matrix homeserver (Synapse), through its client-server
//! API as an app uses it: accounts by open registration, a second device by
//! password login, rooms for the channel and the direct conversations, and
//! every device reading with long-polled `/sync`.

use super::{ChatArgs, Plan, Ready, Recorder, Shape};
use crate::progress::Progress;
use anyhow::{bail, Context};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What each device's `/sync` asks for: the rooms' new messages, nothing else.
const FILTER: &str = r#"{"presence":{"types":[]},"account_data":{"types":[]},"room":{"timeline":{"limit":1000,"types":["m.room.message"]},"state":{"types":[],"lazy_load_members":true},"ephemeral":{"types":[]},"account_data":{"types":[]}}}"#;

#[derive(Clone)]
struct Homeserver {
    http: reqwest::Client,
    base: String,
}

struct Session {
    user_id: String,
    token: String,
}

impl Homeserver {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}/_matrix/client/v3{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }

    async fn register(&self, username: &str, password: &str) -> anyhow::Result<Session> {
        let mut body = json!({"username": username, "password": password, "initial_device_display_name": "load 0"});
        // The first call names the session the dummy stage completes.
        let first = self.http.post(format!("{}/_matrix/client/v3/register", self.base)).json(&body).send().await?;
        let first: Value = first.json().await?;
        let session = first["session"].as_str().context("registration gave no session (is it open?)")?;
        body["auth"] = json!({"type": "m.login.dummy", "session": session});
        let registered = self.call(reqwest::Method::POST, "/register", None, Some(&body)).await?;
        Ok(Session {
            user_id: registered["user_id"].as_str().context("no user_id")?.to_owned(),
            token: registered["access_token"].as_str().context("no access_token")?.to_owned(),
        })
    }

    async fn login(&self, user_id: &str, password: &str, device: &str) -> anyhow::Result<Session> {
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id},
                          "password": password, "initial_device_display_name": device});
        let signed_in = self.call(reqwest::Method::POST, "/login", None, Some(&body)).await?;
        Ok(Session {
            user_id: user_id.to_owned(),
            token: signed_in["access_token"].as_str().context("no access_token")?.to_owned(),
        })
    }

    async fn sync(&self, token: &str, since: Option<&str>, timeout_ms: u64) -> anyhow::Result<Value> {
        let mut query = vec![("filter", FILTER.to_owned()), ("timeout", timeout_ms.to_string())];
        if let Some(since) = since {
            query.push(("since", since.to_owned()));
        }
        let response = self
            .http
            .get(format!("{}/_matrix/client/v3/sync", self.base))
            .bearer_auth(token)
            .query(&query)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("/sync: {status}");
        }
        Ok(response.json().await?)
    }
}

/// `!` and `:` and the rest of a room id, safe in a path.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn prepare(args: &ChatArgs, plan: Arc<Plan>, recorder: Arc<Recorder>) -> anyhow::Result<Ready> {
    let server = Homeserver { http: reqwest::Client::new(), base: args.server.trim_end_matches('/').to_owned() };
    let password = "load test passphrase 2026";
    let run = format!("{:06x}", std::process::id());

    let progress = Progress::new("accounts and devices");
    // sessions[device]: every device of every person, as Plan::device numbers them.
    let mut sessions = Vec::with_capacity(plan.people * plan.devices);
    for p in 0..plan.people {
        let first = server.register(&format!("p{p}r{run}"), password).await?;
        let user_id = first.user_id.clone();
        sessions.push(first);
        for d in 1..plan.devices {
            sessions.push(server.login(&user_id, password, &format!("load {d}")).await?);
        }
        progress.update(p as i64 + 1, plan.people as i64);
    }
    progress.finish();

    let progress = Progress::new("rooms");
    let first_device = |person: usize| &sessions[plan.device(person, 0)];
    let mut rooms = Vec::with_capacity(plan.conversations.len());
    for (c, members) in plan.conversations.iter().enumerate() {
        let room = match args.shape {
            Shape::Channel => {
                let body = json!({"preset": "public_chat", "name": format!("Load {run}")});
                let created = server
                    .call(reqwest::Method::POST, "/createRoom", Some(&first_device(members[0]).token), Some(&body))
                    .await?;
                let room = created["room_id"].as_str().context("no room_id")?.to_owned();
                for &p in &members[1..] {
                    let path = format!("/join/{}", path_segment(&room));
                    server.call(reqwest::Method::POST, &path, Some(&first_device(p).token), Some(&json!({}))).await?;
                    progress.update(p as i64 + 1, members.len() as i64);
                }
                room
            }
            Shape::Dms => {
                let (a, b) = (first_device(members[0]), first_device(members[1]));
                let body = json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [b.user_id]});
                let created = server.call(reqwest::Method::POST, "/createRoom", Some(&a.token), Some(&body)).await?;
                let room = created["room_id"].as_str().context("no room_id")?.to_owned();
                let path = format!("/join/{}", path_segment(&room));
                server.call(reqwest::Method::POST, &path, Some(&b.token), Some(&json!({}))).await?;
                progress.update(c as i64 + 1, plan.conversations.len() as i64);
                room
            }
        };
        rooms.push(room);
    }
    progress.finish();

    let index: Arc<HashMap<String, usize>> = Arc::new(rooms.iter().enumerate().map(|(c, r)| (r.clone(), c)).collect());
    let progress = Progress::new("first syncs");
    for (d, session) in sessions.iter().enumerate() {
        let first = server.sync(&session.token, None, 0).await?;
        let mut since = first["next_batch"].as_str().context("no next_batch")?.to_owned();
        let (server, token, index, recorder) = (server.clone(), session.token.clone(), index.clone(), recorder.clone());
        tokio::spawn(async move {
            loop {
                let page = match server.sync(&token, Some(&since), 30_000).await {
                    Ok(page) => page,
                    Err(e) => {
                        eprintln!("a device's /sync failed: {e:#}");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let mut arrived = Vec::new();
                if let Some(joined) = page["rooms"]["join"].as_object() {
                    for (room, state) in joined {
                        let Some(&c) = index.get(room) else { continue };
                        for event in state["timeline"]["events"].as_array().into_iter().flatten() {
                            if let Some(n) =
                                event["content"]["body"].as_str().and_then(|b| b.strip_prefix('m')?.parse().ok())
                            {
                                arrived.push((c, n, d));
                            }
                        }
                    }
                }
                recorder.deliver_many(arrived);
                if let Some(next) = page["next_batch"].as_str() {
                    since = next.to_owned();
                }
            }
        });
        progress.update(d as i64 + 1, sessions.len() as i64);
    }
    progress.finish();

    let tokens: Arc<Vec<String>> = Arc::new(sessions.into_iter().map(|s| s.token).collect());
    let rooms = Arc::new(rooms);
    let send = Arc::new(move |n: u64| {
        let (server, plan, tokens, rooms, recorder) =
            (server.clone(), plan.clone(), tokens.clone(), rooms.clone(), recorder.clone());
        async move {
            let (c, person) = plan.route(n);
            let d = plan.device(person, 0);
            recorder.begin(n, c, d);
            let path = format!("/rooms/{}/send/m.room.message/load{n}", path_segment(&rooms[c]));
            let body = json!({"msgtype": "m.text", "body": format!("m{n}")});
            server.call(reqwest::Method::PUT, &path, Some(&tokens[d]), Some(&body)).await?;
            recorder.acknowledge(n, n);
            Ok(())
        }
        .boxed()
    }) as super::SendOne;
    Ok(Ready { before_step: Box::new(|_| async { Ok(()) }.boxed()), send, written_is_acknowledged: false })
}
