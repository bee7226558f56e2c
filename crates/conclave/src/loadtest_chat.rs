//! `conclave loadtest chat`: team messaging under load, on Conclave and,
//! with the same load and the same measurements, on two peers — Synapse
//! (Matrix's homeserver) and ejabberd (the XMPP server WhatsApp was first
//! built on).
//!
//! Two shapes of traffic: one channel of `people` members, each with
//! `devices` devices connected, into which a few of them send; and `dms`
//! direct conversations among the same people (each person in several),
//! each message sent by one person's first device and received by every
//! other device of the conversation. Each step offers messages at a fixed
//! rate for a fixed time (open loop, with at most `in_flight` sends
//! waiting), then waits for deliveries to drain, and reports:
//! - the rate the server accepted (acknowledged durable) messages at;
//! - deliveries: how many of the expected ones (every device of the
//!   conversation but the sender's) arrived, and their latency from the
//!   moment the send began (p50/p99), all clocks in this one process;
//! - server CPU per delivered message, the database's included (every
//!   PostgreSQL process on the machine), and the server's resident memory;
//! - the load generator's own CPU, so a step it could not drive says so.
//!
//! Conclave's messages are real MLS ciphertexts, sealed by the senders'
//! devices before each step (so encryption is not in the time measured);
//! receiving devices do not decrypt: what is measured is the server.

mod conclave;
mod matrix;
mod xmpp;

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ChatArgs {
    /// The system under test.
    #[arg(long, value_enum, default_value_t = System::Conclave)]
    system: System,
    /// Its base URL (`http://host:port`); for ejabberd, `host:port` of its client listener.
    #[arg(long)]
    server: String,
    /// Its process id, to read its CPU time and memory.
    #[arg(long)]
    server_pid: u32,
    /// Conclave: an owner account of an organisation on the server.
    #[arg(long, default_value = "")]
    email: String,
    #[arg(long, env = "CONCLAVE_LOADTEST_PASSWORD", hide_env_values = true, default_value = "")]
    password: String,
    /// ejabberd: the XMPP domain it serves (its MUC service is `conference.` before it).
    #[arg(long, default_value = "bench.local")]
    domain: String,
    #[arg(long, value_enum, default_value_t = Shape::Channel)]
    shape: Shape,
    #[arg(long, default_value_t = 100)]
    people: usize,
    /// Devices per person, each connected and receiving.
    #[arg(long, default_value_t = 2)]
    devices: usize,
    /// Direct conversations (`--shape dms`), spread evenly over the people.
    #[arg(long, default_value_t = 1000)]
    dms: usize,
    /// People who send into the channel (their first device).
    #[arg(long, default_value_t = 20)]
    senders: usize,
    /// Offered rates, messages per second, one step each, until a step takes
    /// or delivers under half of what was offered.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000,3000,5000")]
    rates: Vec<u32>,
    /// Seconds each step offers messages for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds after each step for deliveries to arrive.
    #[arg(long, default_value_t = 3)]
    drain: u64,
    /// Sends waiting for their answer at once; beyond it the load waits.
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    /// Also print each step's figures as one JSON line, for scripts.
    #[arg(long)]
    json: bool,
    /// Conclave: how devices send, on their live connection (as the apps
    /// do) or one API request a message.
    #[arg(long, value_enum, default_value_t = Sends::Live)]
    sends: Sends,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sends {
    Live,
    Api,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum System {
    Conclave,
    Synapse,
    Ejabberd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    Channel,
    Dms,
}

/// Who is in which conversation and who sends: the same for every system.
pub struct Plan {
    pub people: usize,
    pub devices: usize,
    /// Each conversation's members (people, by index).
    pub conversations: Vec<Vec<usize>>,
    /// Message `n` goes into `route(n).0`, sent by `route(n).1`'s first device.
    senders: Vec<(usize, usize)>,
}

impl Plan {
    fn new(args: &ChatArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(args.people >= 2 && args.devices >= 1, "at least two people with a device each");
        let (conversations, senders) = match args.shape {
            Shape::Channel => {
                let senders = args.senders.clamp(1, args.people);
                (vec![(0..args.people).collect()], (0..senders).map(|p| (0, p)).collect())
            }
            Shape::Dms => {
                // Pairs (i, i + d) for d = 1, 2, …: distinct while d stays below half the people.
                let per_offset = args.people;
                anyhow::ensure!(
                    args.dms.div_ceil(per_offset) < args.people / 2,
                    "{} direct conversations need more than {} people",
                    args.dms,
                    args.people
                );
                let pairs: Vec<Vec<usize>> = (0..args.dms)
                    .map(|k| {
                        let i = k % per_offset;
                        vec![i, (i + 1 + k / per_offset) % args.people]
                    })
                    .collect();
                // Each message alternates between the two people of its conversation.
                let senders =
                    (0..2 * args.dms).map(|k| (k % args.dms, pairs[k % args.dms][(k / args.dms) % 2])).collect();
                (pairs, senders)
            }
        };
        Ok(Self { people: args.people, devices: args.devices, conversations, senders })
    }

    pub fn route(&self, n: u64) -> (usize, usize) {
        self.senders[(n % self.senders.len() as u64) as usize]
    }

    /// A device's number across the run: person × devices + which.
    pub fn device(&self, person: usize, which: usize) -> usize {
        person * self.devices + which
    }

    /// Devices that should receive a message of `conversation` (all but the sender's).
    fn recipients(&self, conversation: usize) -> usize {
        self.conversations[conversation].len() * self.devices - 1
    }
}

/// A message begun: when, into which conversation, from which device, and
/// the key its deliveries are recorded under (Conclave: its `seq`, known
/// once acknowledged; the peers: its number, written in its body).
pub struct Sent {
    pub conversation: u32,
    pub device: u32,
    pub started: Instant,
    pub acknowledged: Option<(Instant, u64)>,
}

/// A message that reached a device.
pub struct Delivered {
    pub conversation: u32,
    pub key: u64,
    pub device: u32,
    pub at: Instant,
}

/// What every part of the load writes down; read once each step is over.
#[derive(Default)]
pub struct Recorder {
    sent: Mutex<HashMap<u64, Sent>>,
    delivered: Mutex<Vec<Delivered>>,
}

impl Recorder {
    pub fn begin(&self, n: u64, conversation: usize, device: usize) {
        let sent = Sent {
            conversation: conversation as u32,
            device: device as u32,
            started: Instant::now(),
            acknowledged: None,
        };
        self.sent.lock().unwrap().insert(n, sent);
    }

    pub fn acknowledge(&self, n: u64, key: u64) {
        if let Some(sent) = self.sent.lock().unwrap().get_mut(&n) {
            sent.acknowledged = Some((Instant::now(), key));
        }
    }

    pub fn deliver_many(&self, items: impl IntoIterator<Item = (usize, u64, usize)>) {
        let at = Instant::now();
        let mut delivered = self.delivered.lock().unwrap();
        delivered.extend(items.into_iter().map(|(c, key, d)| Delivered {
            conversation: c as u32,
            key,
            device: d as u32,
            at,
        }));
    }
}

/// Sends message `n` (recording it); its answer is awaited in flight.
pub type SendOne = Arc<dyn Fn(u64) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A system made ready for the plan: everyone signed in, in their
/// conversations, every device receiving into the recorder.
pub struct Ready {
    /// Called before each step with the message numbers it will send
    /// (Conclave seals them then).
    pub before_step: Box<dyn FnMut(std::ops::Range<u64>) -> BoxFuture<'static, anyhow::Result<()>> + Send>,
    pub send: SendOne,
    /// A send counts once written: XMPP without stream management acknowledges nothing.
    pub written_is_acknowledged: bool,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let plan = Arc::new(Plan::new(&args)?);
    let recorder = Arc::new(Recorder::default());
    let name = match args.system {
        System::Conclave => "conclave",
        System::Synapse => "synapse",
        System::Ejabberd => "ejabberd",
    };
    eprintln!(
        "preparing {name}: {} conversation(s), {} people × {} devices",
        plan.conversations.len(),
        plan.people,
        plan.devices
    );
    let prepared_at = Instant::now();
    let mut ready = match args.system {
        System::Conclave => conclave::prepare(&args, plan.clone(), recorder.clone()).await?,
        System::Synapse => matrix::prepare(&args, plan.clone(), recorder.clone()).await?,
        System::Ejabberd => xmpp::prepare(&args, plan.clone(), recorder.clone()).await?,
    };
    eprintln!("ready in {:.1} s", prepared_at.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shape = match args.shape {
        Shape::Channel => "channel",
        Shape::Dms => "dms",
    };
    let mut next = 0u64;
    for &rate in &args.rates {
        let count = rate as u64 * args.seconds;
        let numbers = next..next + count;
        next += count;
        (ready.before_step)(numbers.clone()).await?;
        let before = Usage::take(args.server_pid)?;
        let (offered_for, held_back) = offer(&ready.send, numbers.clone(), rate, args.seconds, args.in_flight).await;
        tokio::time::sleep(Duration::from_secs(args.drain)).await;
        let after = Usage::take(args.server_pid)?;
        let step = Step::measure(&plan, &recorder, numbers, &before, &after, offered_for, held_back);
        step.print(name, shape, rate, ready.written_is_acknowledged, args.json);
        if step.saturated(rate) {
            // Past its ceiling a system only shows the same ceiling again,
            // ever more slowly: a rate ten times its own takes ten times as long.
            eprintln!("{name} {shape}: saturated at {rate}/s (under half taken or delivered); higher rates not tried");
            break;
        }
    }
    Ok(())
}

/// Offers the messages `numbers` at `rate` per second; returns how long it
/// took and how many sends had to wait for one in flight to finish.
async fn offer(
    send: &SendOne,
    numbers: std::ops::Range<u64>,
    rate: u32,
    seconds: u64,
    in_flight: usize,
) -> (Duration, u64) {
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut held_back = 0;
    let first = numbers.start;
    for n in numbers {
        let due = start + Duration::from_secs_f64((n - first) as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                held_back += 1;
                permits.clone().acquire_owned().await.expect("never closed")
            }
        };
        let sending = send(n);
        let failures = failures.clone();
        tokio::spawn(async move {
            if let Err(e) = sending.await {
                if failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 {
                    eprintln!("a send failed: {e:#}");
                }
            }
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(seconds.max(10)), permits.acquire_many(in_flight as u32)).await;
    (start.elapsed(), held_back)
}

/// CPU time of the server, of every PostgreSQL process, and of this load
/// generator; the server's resident memory.
struct Usage {
    at: Instant,
    server_cpu: f64,
    database_cpu: f64,
    own_cpu: f64,
    rss_kib: u64,
}

impl Usage {
    fn take(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            server_cpu: conclave_server::metrics::process_cpu_seconds(Some(pid))
                .with_context(|| format!("no process {pid}"))?,
            database_cpu: cpu_of_processes_named("postgres"),
            own_cpu: conclave_server::metrics::process_cpu_seconds(None).unwrap_or(0.0),
            rss_kib: crate::loadtest::rss_kib(pid)?,
        })
    }
}

fn cpu_of_processes_named(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|pid| conclave_server::metrics::process_cpu_seconds(Some(pid)))
        .sum()
}

struct Step {
    offered: u64,
    acknowledged: u64,
    offered_for: Duration,
    held_back: u64,
    expected: u64,
    delivered: u64,
    latencies: Vec<Duration>,
    server_cpu: f64,
    database_cpu: f64,
    own_cpu_share: f64,
    rss_mib: f64,
    window: Duration,
}

impl Step {
    #[allow(clippy::too_many_arguments)]
    fn measure(
        plan: &Plan,
        recorder: &Recorder,
        numbers: std::ops::Range<u64>,
        before: &Usage,
        after: &Usage,
        offered_for: Duration,
        held_back: u64,
    ) -> Self {
        let offered = numbers.end - numbers.start;
        let sent = std::mem::take(&mut *recorder.sent.lock().unwrap());
        let delivered = std::mem::take(&mut *recorder.delivered.lock().unwrap());
        // (conversation, key) → when it began and from which device.
        let mut begun = HashMap::new();
        let mut acknowledged = 0;
        let mut expected = 0;
        for s in sent.values() {
            let Some((_, key)) = s.acknowledged else { continue };
            acknowledged += 1;
            expected += plan.recipients(s.conversation as usize) as u64;
            begun.insert((s.conversation, key), (s.started, s.device));
        }
        let mut latencies: Vec<Duration> = delivered
            .iter()
            .filter_map(|d| {
                let (started, from) = begun.get(&(d.conversation, d.key))?;
                (*from != d.device).then(|| d.at.saturating_duration_since(*started))
            })
            .collect();
        latencies.sort();
        let window = after.at - before.at;
        Self {
            offered,
            acknowledged,
            offered_for,
            held_back,
            expected,
            delivered: latencies.len() as u64,
            latencies,
            server_cpu: after.server_cpu - before.server_cpu,
            database_cpu: after.database_cpu - before.database_cpu,
            own_cpu_share: (after.own_cpu - before.own_cpu) / window.as_secs_f64(),
            rss_mib: after.rss_kib as f64 / 1024.0,
            window,
        }
    }

    fn accepted_rate(&self) -> f64 {
        self.acknowledged as f64 / self.offered_for.as_secs_f64()
    }

    fn delivered_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            100.0 * self.delivered as f64 / self.expected as f64
        }
    }

    /// Under half the offered rate was taken, or under half the deliveries made.
    fn saturated(&self, rate: u32) -> bool {
        self.accepted_rate() < rate as f64 / 2.0 || self.delivered_pct() < 50.0
    }

    fn print(&self, system: &str, shape: &str, rate: u32, written_is_acknowledged: bool, json: bool) {
        let pct = |p: f64| {
            if self.latencies.is_empty() {
                f64::NAN
            } else {
                let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
                self.latencies[i].as_secs_f64() * 1000.0
            }
        };
        let (accepted_rate, delivered_pct) = (self.accepted_rate(), self.delivered_pct());
        let per_delivery_us = |cpu: f64| if self.delivered == 0 { f64::NAN } else { cpu * 1e6 / self.delivered as f64 };
        println!("{system} {shape}: {rate} messages/s offered for {:.1} s", self.offered_for.as_secs_f64());
        let acknowledged = if written_is_acknowledged { "written (no acknowledgement)" } else { "acknowledged" };
        println!("  {:<34} {} of {} ({accepted_rate:.0}/s)", acknowledged, self.acknowledged, self.offered);
        println!("  {:<34} {}", "sends that waited for a slot", self.held_back);
        println!(
            "  {:<34} {} of {} ({delivered_pct:.2} %)",
            "deliveries to other devices", self.delivered, self.expected
        );
        println!("  {:<34} p50 {:.1} ms, p99 {:.1} ms", "send → device latency", pct(0.5), pct(0.99));
        println!(
            "  {:<34} {:.2} s server + {:.2} s PostgreSQL over {:.1} s",
            "CPU",
            self.server_cpu,
            self.database_cpu,
            self.window.as_secs_f64()
        );
        println!(
            "  {:<34} {:.1} µs (+ {:.1} µs PostgreSQL)",
            "server CPU per delivery",
            per_delivery_us(self.server_cpu),
            per_delivery_us(self.database_cpu)
        );
        println!("  {:<34} {:.1} MiB", "server resident memory", self.rss_mib);
        println!("  {:<34} {:.0} % of a core", "load generator CPU", self.own_cpu_share * 100.0);
        if json {
            let figures = serde_json::json!({
                "system": system, "shape": shape, "rate": rate, "offered": self.offered,
                "acknowledged": self.acknowledged, "accepted_rate": accepted_rate, "held_back": self.held_back,
                "expected": self.expected, "delivered": self.delivered, "delivered_pct": delivered_pct,
                "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "server_cpu_s": self.server_cpu, "database_cpu_s": self.database_cpu,
                "cpu_us_per_delivery": per_delivery_us(self.server_cpu),
                "db_cpu_us_per_delivery": per_delivery_us(self.database_cpu),
                "window_s": self.window.as_secs_f64(),
                "rss_mib": self.rss_mib, "load_cpu_pct": self.own_cpu_share * 100.0,
            });
            println!("figures {figures}");
        }
    }
}
