//! The load on Conclave: accounts by invitation, devices with real MLS
//! groups (through the SDK's `ChatDevice`), each device told of new
//! entries on its live connection and reading them as an app does.

use super::{ChatArgs, Plan, Ready, Recorder, Sends, Shape};
use crate::loadtest::source;
use crate::progress::Progress;
use anyhow::Context;
use conclave_client::chat::{ChatDevice, ChatError};
use conclave_client::Client;
use conclave_proto::conversation::{
    ConversationKind, CreateConversationRequest, Entry, EntryBody, LiveEvent, SendMessageRequest,
};
use futures_util::future::join_all;
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rounds of syncing every device before the groups must have settled.
const SETTLE_ROUNDS: usize = 100;

pub async fn prepare(args: &ChatArgs, plan: Arc<Plan>, recorder: Arc<Recorder>) -> anyhow::Result<Ready> {
    let (owner, login) = crate::loadtest::sign_in_owner(&args.server, &args.email, &args.password).await?;
    let org_id = login.user.org_id.clone().context("the account has no organisation")?;
    let run = format!("{:08x}", rand_u32());

    let progress = Progress::new("accounts");
    let mut people = Vec::with_capacity(plan.people);
    for n in 0..plan.people {
        let email = format!("chat{n}-{run}@conclave.test");
        let role = conclave_proto::OrgRole::Member;
        let invite =
            owner.invite_member(&org_id, &conclave_proto::InviteMemberRequest { email: email.clone(), role }).await?;
        let signed_up = Client::with_local_address(&args.server, Some(source(300_000 + n)))
            .signup(&conclave_proto::SignupRequest {
                email,
                password: args.password.clone(),
                display_name: format!("Person {n}"),
                invite_token: Some(invite.invite_token),
            })
            .await
            .context("sign up a person")?;
        people.push((Client::new(&args.server).authenticated(&signed_up.token), signed_up.user.id));
        progress.update(n as i64 + 1, plan.people as i64);
    }
    progress.finish();

    let progress = Progress::new("conversations");
    let mut conversation_ids = Vec::with_capacity(plan.conversations.len());
    for (c, members) in plan.conversations.iter().enumerate() {
        let conversation = match args.shape {
            Shape::Channel => {
                let req = CreateConversationRequest {
                    kind: ConversationKind::Channel,
                    name: Some(format!("Load {run}")),
                    members: members.iter().map(|&p| people[p].1.clone()).collect(),
                    encrypted: true,
                };
                owner.create_conversation(&req).await?
            }
            Shape::Dms => {
                let req = CreateConversationRequest {
                    kind: ConversationKind::Direct,
                    name: None,
                    members: vec![people[members[1]].1.clone()],
                    encrypted: true,
                };
                people[members[0]].0.create_conversation(&req).await?
            }
        };
        conversation_ids.push(conversation.id);
        progress.update(c as i64 + 1, plan.conversations.len() as i64);
    }
    progress.finish();

    // Every device, in the order Plan::device numbers them.
    let mut devices = Vec::with_capacity(plan.people * plan.devices);
    for (p, (client, _)) in people.iter().enumerate() {
        for d in 0..plan.devices {
            devices.push(ChatDevice::register(client, &format!("load {p}.{d}")).await?);
        }
    }
    let memberships: Vec<Vec<usize>> = {
        let mut of_person = vec![Vec::new(); plan.people];
        for (c, members) in plan.conversations.iter().enumerate() {
            for &p in members {
                of_person[p].push(c);
            }
        }
        (0..devices.len()).map(|d| of_person[d / plan.devices].clone()).collect()
    };
    settle(&mut devices, &memberships, &conversation_ids).await?;

    // Each device reads from where its log is now.
    let index: Arc<HashMap<String, usize>> =
        Arc::new(conversation_ids.iter().enumerate().map(|(c, id)| (id.clone(), c)).collect());
    let answers: Answers = Arc::default();
    let mut senders = Vec::with_capacity(devices.len());
    for (d, device) in devices.iter().enumerate() {
        let mut cursors = HashMap::new();
        for &c in &memberships[d] {
            let page = device.client().read_conversation(&conversation_ids[c], &device.device_id, 0, 1, 0).await?;
            cursors.insert(c, page.last_seq);
        }
        let live = device.client().device_live(&device.device_id).await.context("open a device's live connection")?;
        senders.push(live.sender());
        let reader = Reader {
            device: d,
            device_id: device.device_id.clone(),
            client: device.client().clone(),
            conversation_ids: conversation_ids.clone(),
            index: index.clone(),
            cursors: Arc::new(Mutex::new(cursors)),
            wanted: Arc::default(),
            wake: Arc::default(),
            recorder: recorder.clone(),
            answers: answers.clone(),
        };
        reader.spawn(live);
    }

    // Senders seal before each step; the step only sends.
    let devices = Arc::new(tokio::sync::Mutex::new(devices));
    let sealed: Arc<Mutex<SealedStep>> = Arc::default();
    let before_step = {
        let (plan, sealed, devices, conversation_ids) =
            (plan.clone(), sealed.clone(), devices.clone(), conversation_ids.clone());
        Box::new(move |numbers: std::ops::Range<u64>| {
            let (plan, sealed, devices, conversation_ids) =
                (plan.clone(), sealed.clone(), devices.clone(), conversation_ids.clone());
            async move {
                let mut devices = devices.lock().await;
                let mut ready = HashMap::with_capacity((numbers.end - numbers.start) as usize);
                for n in numbers {
                    let (c, person) = plan.route(n);
                    let d = plan.device(person, 0);
                    let req = devices[d].seal_text(&conversation_ids[c], &format!("load message {n}"))?;
                    ready.insert(n, (c, d, req));
                }
                *sealed.lock().unwrap() = ready;
                Ok(())
            }
            .boxed()
        }) as Box<_>
    };
    let clients: Arc<Vec<Client>> = Arc::new(people.into_iter().map(|(client, _)| client).collect());
    let (senders, over) = (Arc::new(senders), args.sends);
    let send = {
        let plan = plan.clone();
        Arc::new(move |n: u64| {
            let taken = sealed.lock().unwrap().remove(&n);
            let (recorder, clients, senders, answers, conversation_ids, devices_per) = (
                recorder.clone(),
                clients.clone(),
                senders.clone(),
                answers.clone(),
                conversation_ids.clone(),
                plan.devices,
            );
            async move {
                let (c, d, req) = taken.context("a message not sealed")?;
                recorder.begin(n, c, d);
                let seq = match over {
                    Sends::Api => clients[d / devices_per].send_message(&conversation_ids[c], &req).await?.seq,
                    Sends::Live => {
                        let (answered, answer) = tokio::sync::oneshot::channel();
                        answers.lock().unwrap().insert(req.client_id.clone(), answered);
                        senders[d].send_message(&conversation_ids[c], &req)?;
                        answer.await.context("the live connection ended before answering")?.map_err(|problem| {
                            anyhow::anyhow!("a message was not sent: {} ({})", problem.title, problem.code())
                        })?
                    }
                };
                recorder.acknowledge(n, seq);
                Ok(())
            }
            .boxed()
        }) as super::SendOne
    };
    Ok(Ready { before_step, send, written_is_acknowledged: false })
}

/// Syncs every device until each is in the group of every conversation it
/// belongs to: the first device creates a group, committers add the rest.
async fn settle(
    devices: &mut [ChatDevice],
    memberships: &[Vec<usize>],
    conversation_ids: &[String],
) -> anyhow::Result<()> {
    let progress = Progress::new("MLS groups");
    // A conversation lets only so many devices wait to join at once (429
    // beyond): those refused ask again once the committer added the others.
    let mut asking: Vec<(usize, usize)> =
        memberships.iter().enumerate().flat_map(|(d, cs)| cs.iter().map(move |&c| (d, c))).collect();
    let wanted: usize = memberships.iter().map(Vec::len).sum();
    let (mut joined, mut unsettled) = (0, 0);
    for _ in 0..SETTLE_ROUNDS {
        let mut refused = Vec::new();
        for (d, c) in asking {
            match devices[d].open(&conversation_ids[c]).await {
                Err(ChatError::Api(e)) if e.status() == Some(429) => refused.push((d, c)),
                other => other?,
            }
        }
        asking = refused;
        // A few at a time: committers' work arrives while others sync.
        for chunk in devices.chunks_mut(16) {
            for synced in join_all(chunk.iter_mut().map(|d| d.sync())).await {
                synced?;
            }
        }
        joined = devices
            .iter()
            .zip(memberships)
            .map(|(d, cs)| cs.iter().filter(|&&c| d.in_group(&conversation_ids[c])).count())
            .sum();
        progress.update(joined as i64, wanted as i64);
        // Every device at the same epoch of each group, or a send is refused as stale.
        unsettled = conversation_ids
            .iter()
            .enumerate()
            .filter(|(c, id)| {
                let epochs: Vec<_> = devices
                    .iter()
                    .zip(memberships)
                    .filter(|(_, cs)| cs.contains(c))
                    .map(|(d, _)| d.epoch(id))
                    .collect();
                !epochs.windows(2).all(|w| w[0] == w[1])
            })
            .count();
        if joined == wanted && asking.is_empty() && unsettled == 0 {
            progress.finish();
            return Ok(());
        }
    }
    anyhow::bail!(
        "the devices' groups did not settle after {SETTLE_ROUNDS} rounds: {joined} of {wanted} memberships in \
         their group, {unsettled} groups whose devices are at different epochs, {} devices still to ask",
        asking.len()
    )
}

/// The messages sealed for the coming step, by load number: the conversation,
/// the sending device and the request to send.
type SealedStep = HashMap<u64, (usize, usize, SendMessageRequest)>;

/// Sends on live connections waiting for their answer, by client id.
type Answers = Arc<Mutex<HashMap<String, tokio::sync::oneshot::Sender<Result<u64, conclave_proto::Problem>>>>>;

/// One device's reading, as an app does it: new entries arrive with the
/// news on its live connection; when they do not follow what it has (or
/// were not sent along), it reads the log from where it is.
struct Reader {
    device: usize,
    device_id: String,
    client: Client,
    conversation_ids: Vec<String>,
    index: Arc<HashMap<String, usize>>,
    /// The last `seq` this device has of each of its conversations.
    cursors: Arc<Mutex<HashMap<usize, u64>>>,
    /// Conversations to read, up to a `seq` (`None`: to the end, after a resync).
    wanted: Arc<Mutex<HashMap<usize, Option<u64>>>>,
    wake: Arc<tokio::sync::Notify>,
    recorder: Arc<Recorder>,
    /// Where the answers to this device's sends go.
    answers: Answers,
}

impl Reader {
    /// Takes the entries that follow what the device has; false if there is
    /// a gap before them (the log must be read).
    fn apply(&self, c: usize, entries: &[Entry]) -> bool {
        let mut cursors = self.cursors.lock().unwrap();
        let cursor = cursors.get_mut(&c).expect("a conversation of this device");
        let fresh: Vec<&Entry> = entries.iter().filter(|e| e.seq > *cursor).collect();
        let Some(first) = fresh.first() else { return true };
        if first.seq != *cursor + 1 {
            return false;
        }
        *cursor = fresh.last().map_or(*cursor, |e| e.seq);
        let device = self.device;
        self.recorder.deliver_many(fresh.iter().filter_map(|e| match &e.body {
            EntryBody::Message { .. } => Some((c, e.seq, device)),
            _ => None,
        }));
        true
    }

    fn spawn(self, mut live: conclave_client::DeviceLive) {
        let reader = Arc::new(self);
        let listening = reader.clone();
        tokio::spawn(async move {
            let mine: Vec<usize> = listening.cursors.lock().unwrap().keys().copied().collect();
            loop {
                match live.next(Duration::from_secs(3600)).await {
                    Ok(LiveEvent::Changed { conversation_id, last_seq, entries }) => {
                        let Some(&c) = listening.index.get(&conversation_id) else { continue };
                        if !entries.is_empty() && listening.apply(c, &entries) {
                            continue;
                        }
                        let mut wanted = listening.wanted.lock().unwrap();
                        if let Some(seq) = wanted.entry(c).or_insert(Some(last_seq)) {
                            *seq = (*seq).max(last_seq);
                        }
                    }
                    Ok(LiveEvent::Sent { client_id, seq, .. }) => {
                        if let Some(answered) = listening.answers.lock().unwrap().remove(&client_id) {
                            let _ = answered.send(Ok(seq));
                        }
                        continue;
                    }
                    Ok(LiveEvent::NotSent { client_id, problem, .. }) => {
                        if let Some(answered) = listening.answers.lock().unwrap().remove(&client_id) {
                            let _ = answered.send(Err(problem));
                        }
                        continue;
                    }
                    Ok(LiveEvent::Resync) => {
                        let mut wanted = listening.wanted.lock().unwrap();
                        for &c in &mine {
                            wanted.insert(c, None);
                        }
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("a device's live connection ended: {e}");
                        return;
                    }
                }
                listening.wake.notify_one();
            }
        });
        tokio::spawn(async move {
            loop {
                reader.wake.notified().await;
                let due: Vec<(usize, Option<u64>)> = reader.wanted.lock().unwrap().drain().collect();
                for (c, until) in due {
                    if let Err(e) = reader.read(c, until).await {
                        eprintln!("a device could not read: {e:#}");
                    }
                }
            }
        });
    }

    /// Reads conversation `c` up to `until` (or to its end).
    async fn read(&self, c: usize, until: Option<u64>) -> anyhow::Result<()> {
        const PAGE: u32 = 500;
        loop {
            let after = self.cursors.lock().unwrap()[&c];
            if until.is_some_and(|u| after >= u) {
                return Ok(());
            }
            let page =
                self.client.read_conversation(&self.conversation_ids[c], &self.device_id, after, PAGE, 0).await?;
            if page.entries.is_empty() {
                return Ok(());
            }
            self.apply(c, &page.entries);
            if page.entries.len() < PAGE as usize && until.is_none() {
                return Ok(());
            }
        }
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
        ^ std::process::id()
}
