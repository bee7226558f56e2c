//! The same load on an XMPP server (ejabberd): accounts by in-band
//! registration, each device a client stream (SASL PLAIN on loopback, a
//! resource of its own, message carbons so a person's other device sees
//! what it sent), a multi-user chat room for the channel and one-to-one
//! chats for the direct conversations. XMPP acknowledges nothing without
//! stream management, so a message counts as sent once written.

use super::{ChatArgs, Plan, Ready, Recorder, Shape};
use crate::progress::Progress;
use anyhow::{bail, Context};
use futures_util::FutureExt;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// One client stream, read as text until what the next step waits for.
struct Stream {
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    buffer: String,
}

impl Stream {
    async fn open(server: &str, domain: &str) -> anyhow::Result<Self> {
        let socket = TcpStream::connect(server).await.with_context(|| format!("connect to {server}"))?;
        socket.set_nodelay(true)?;
        let (read, write) = socket.into_split();
        let mut stream = Self { read, write, buffer: String::new() };
        stream.start(domain).await?;
        Ok(stream)
    }

    /// A stream header, and the features the server offers.
    async fn start(&mut self, domain: &str) -> anyhow::Result<()> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ))
        .await?;
        self.until("</stream:features>").await.map(drop)
    }

    async fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.write.write_all(text.as_bytes()).await.context("write to the XMPP stream")
    }

    /// Reads until `marker` arrives; returns everything up to it, and keeps the rest.
    async fn until(&mut self, marker: &str) -> anyhow::Result<String> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(at) = self.buffer.find(marker) {
                let rest = self.buffer.split_off(at + marker.len());
                return Ok(std::mem::replace(&mut self.buffer, rest));
            }
            if self.buffer.contains("</stream:stream>") || self.buffer.contains("<stream:error") {
                bail!("the server ended the stream: {}", self.buffer);
            }
            let n = tokio::time::timeout(std::time::Duration::from_secs(30), self.read.read(&mut chunk))
                .await
                .with_context(|| format!("waiting for {marker}"))??;
            if n == 0 {
                bail!("the stream closed while waiting for {marker}");
            }
            self.buffer.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The opening tag of the next element that has `marker` in it; what
    /// it holds stays in the buffer.
    async fn tag_with(&mut self, marker: &str) -> anyhow::Result<String> {
        let before = self.until(marker).await?;
        let after = self.until(">").await?;
        Ok(format!("{}{after}", &before[before.rfind('<').unwrap_or(0)..]))
    }

    /// Sends an iq and waits for its answer, which must be a result.
    async fn iq(&mut self, id: &str, iq: &str) -> anyhow::Result<()> {
        self.send(iq).await?;
        let answer = self.tag_with(&format!("id='{id}'")).await?;
        if !answer.contains("type='result'") {
            let rest = self.until("</iq>").await.unwrap_or_default();
            bail!("iq {id} failed: {answer}{rest}");
        }
        Ok(())
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A device signed in: registered first when it is its person's first.
async fn sign_in(
    server: &str,
    domain: &str,
    user: &str,
    password: &str,
    resource: &str,
    register: bool,
) -> anyhow::Result<Stream> {
    let mut stream = Stream::open(server, domain).await?;
    if register {
        stream
            .iq(
                "reg",
                &format!(
                    "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{user}</username>\
                     <password>{password}</password></query></iq>"
                ),
            )
            .await
            .context("in-band registration (is mod_register open?)")?;
    }
    let plain = base64(format!("\0{user}\0{password}").as_bytes());
    stream.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")).await?;
    let answer = stream.tag_with("xmpp-sasl'").await?;
    if !answer.starts_with("<success") {
        bail!("sign-in refused for {user}: {answer}");
    }
    stream.start(domain).await?;
    stream
        .iq("bind", &format!("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"))
        .await?;
    stream.iq("carbons", "<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>").await?;
    stream.send("<presence/>").await?;
    Ok(stream)
}

pub async fn prepare(args: &ChatArgs, plan: Arc<Plan>, recorder: Arc<Recorder>) -> anyhow::Result<Ready> {
    let domain = &args.domain;
    let password = "load-test-passphrase-2026";
    let run = format!("{:06x}", std::process::id());
    let user = |p: usize| format!("p{p}r{run}");
    let room = format!("load{run}@conference.{domain}");

    let progress = Progress::new("accounts and devices");
    let mut streams = Vec::with_capacity(plan.people * plan.devices);
    for p in 0..plan.people {
        for d in 0..plan.devices {
            streams.push(sign_in(&args.server, domain, &user(p), password, &format!("d{d}"), d == 0).await?);
        }
        progress.update(p as i64 + 1, plan.people as i64);
    }
    progress.finish();

    if args.shape == Shape::Channel {
        let progress = Progress::new("room occupants");
        for (device, stream) in streams.iter_mut().enumerate() {
            let nick = format!("n{device}");
            stream
                .send(&format!(
                    "<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
                ))
                .await?;
            // The room's own presence for this occupant carries status 110
            // (and 201 when it made the room).
            let own = loop {
                let presence = stream.until("</presence>").await?;
                if presence.contains("code='110'") {
                    break presence;
                }
            };
            if own.contains("code='201'") {
                // A new room stays locked until its owner accepts the defaults (an instant room).
                stream
                    .iq(
                        "unlock",
                        &format!(
                            "<iq type='set' to='{room}' id='unlock'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
                        ),
                    )
                    .await
                    .context("unlock the new room")?;
            }
            progress.update(device as i64 + 1, (plan.people * plan.devices) as i64);
        }
        progress.finish();
    }

    let mut writers = Vec::with_capacity(streams.len());
    for (device, stream) in streams.into_iter().enumerate() {
        let Stream { mut read, write, buffer } = stream;
        writers.push(tokio::sync::Mutex::new(write));
        let (recorder, plan) = (recorder.clone(), plan.clone());
        tokio::spawn(async move {
            let mut text = buffer;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                // Every `<body>m<n></body>` is message n (carbons carry it too).
                let mut arrived = Vec::new();
                let mut consumed = 0;
                while let Some(start) = text[consumed..].find("<body>m") {
                    let from = consumed + start + "<body>m".len();
                    let Some(len) = text[from..].find("</body>") else { break };
                    if let Ok(n) = text[from..from + len].parse::<u64>() {
                        arrived.push((plan.route(n).0, n, device));
                    }
                    consumed = from + len;
                }
                recorder.deliver_many(arrived);
                // Keep only a tail that may hold the start of a body.
                let keep = text.len().saturating_sub(64).max(consumed);
                let keep = (keep..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
                text.drain(..keep);
                match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        eprintln!("an XMPP stream closed");
                        return;
                    }
                    Ok(n) => text.push_str(&String::from_utf8_lossy(&chunk[..n])),
                }
            }
        });
    }

    let writers = Arc::new(writers);
    let (domain, shape) = (domain.clone(), args.shape);
    let send = Arc::new(move |n: u64| {
        let (plan, writers, recorder, room, domain, run) =
            (plan.clone(), writers.clone(), recorder.clone(), room.clone(), domain.clone(), run.clone());
        async move {
            let (c, person) = plan.route(n);
            let d = plan.device(person, 0);
            let stanza = match shape {
                Shape::Channel => {
                    format!("<message to='{room}' type='groupchat' id='m{n}'><body>m{n}</body></message>")
                }
                Shape::Dms => {
                    let members = &plan.conversations[c];
                    let other = if members[0] == person { members[1] } else { members[0] };
                    format!("<message to='p{other}r{run}@{domain}' type='chat' id='m{n}'><body>m{n}</body></message>")
                }
            };
            recorder.begin(n, c, d);
            writers[d].lock().await.write_all(stanza.as_bytes()).await?;
            recorder.acknowledge(n, n);
            Ok(())
        }
        .boxed()
    }) as super::SendOne;
    Ok(Ready { before_step: Box::new(|_| async { Ok(()) }.boxed()), send, written_is_acknowledged: true })
}
