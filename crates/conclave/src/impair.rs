//! `conclave impair`: a UDP relay that makes a bad network on purpose, for
//! trying media on loss, jitter, a narrow link or an outage. Point the
//! server's advertised media address at it (`conclave serve
//! --media-advertise 127.0.0.2` with `--listen 127.0.0.2:<the media port>`
//! here, say) and every participant's media passes through it. SIGUSR1
//! cuts the network and brings it back, and SIGUSR2 switches the loss,
//! delay and jitter on and off, for tests that choose the moment.
//!
//! A server that gives each peer connection a port of its own (Janus, from
//! its `rtp_port_range`) is reached through `--ports N`: the N ports from
//! `--listen`'s relay to the N from `--upstream`'s, each port its own
//! network drawn from the same seed, all cut and restored together.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use conclave_impair::{Impairment, Proxy, ProxyStats};

#[derive(Args)]
pub struct ImpairArgs {
    /// Where participants send (the server's advertised media address).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The server's real media address.
    #[arg(long, value_name = "ADDR:PORT")]
    upstream: SocketAddr,
    /// Relay this many consecutive ports, from `--listen`'s port to
    /// `--upstream`'s.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    ports: u16,
    #[command(flatten)]
    link: LinkArgs,
    /// Let jitter reorder datagrams.
    #[arg(long)]
    reorder: bool,
    /// The link's capacity each way, in kbit/s (a 200 ms queue, then drops).
    #[arg(long, value_name = "KBPS")]
    rate: Option<u64>,
    /// Seed of the losses and delays: the same seed, the same network.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start with a clean network; SIGUSR2 switches the impairment on (and
    /// off again).
    #[arg(long)]
    impair_on_signal: bool,
    /// Cut everything this many seconds after starting...
    #[arg(long, value_name = "SECONDS", requires = "outage_for")]
    outage_after: Option<f64>,
    /// ...for this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "outage_after")]
    outage_for: Option<f64>,
}

/// The path's loss and delay, as `conclave impair` and `conclave loadtest
/// media` both take them.
#[derive(Args)]
pub struct LinkArgs {
    /// Datagrams lost each way, in percent.
    #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
    pub loss: f64,
    /// Delay each way, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub delay: u64,
    /// Extra delay each way, uniform up to this, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub jitter: u64,
}

impl LinkArgs {
    pub fn impairment(&self) -> anyhow::Result<Impairment> {
        anyhow::ensure!((0.0..=100.0).contains(&self.loss), "--loss is a percentage, 0 to 100");
        Ok(Impairment {
            loss: self.loss / 100.0,
            delay: Duration::from_millis(self.delay),
            jitter: Duration::from_millis(self.jitter),
            ..Impairment::default()
        })
    }
}

pub async fn run(args: ImpairArgs) -> anyhow::Result<()> {
    let impairment = Impairment { reorder: args.reorder, rate_kbps: args.rate, ..args.link.impairment()? };
    let mut proxies = Vec::with_capacity(usize::from(args.ports));
    for offset in 0..args.ports {
        let (listen, upstream) = (shifted(args.listen, offset)?, shifted(args.upstream, offset)?);
        // Each port a network of its own, as each participant behind one
        // port is: the same seed would give every port the same losses.
        let seed = args.seed.wrapping_add(u64::from(offset) << 32);
        let proxy = Proxy::start(listen, upstream, impairment, impairment, seed)
            .await
            .with_context(|| format!("relaying {listen} → {upstream}"))?;
        proxies.push(proxy);
    }
    let mut impaired = !args.impair_on_signal;
    let each = |f: &dyn Fn(&Proxy)| proxies.iter().for_each(f);
    each(&|p: &Proxy| p.set_impaired(impaired));
    // The last port of a range follows each address: `127.0.0.2:20000-20015`.
    let through = |last: Option<SocketAddr>| last.filter(|_| args.ports > 1).map(|a| format!("-{}", a.port()));
    println!(
        "impairing {}{} → {}{}: {} % loss, {} ms delay, up to {} ms jitter{}{}{}",
        proxies[0].local_addr(),
        through(proxies.last().map(Proxy::local_addr)).unwrap_or_default(),
        args.upstream,
        through(shifted(args.upstream, args.ports - 1).ok()).unwrap_or_default(),
        args.link.loss,
        args.link.delay,
        args.link.jitter,
        if args.reorder { ", reordering" } else { "" },
        args.rate.map(|r| format!(", {r} kbit/s")).unwrap_or_default(),
        if impaired { "" } else { " (from SIGUSR2 on)" },
    );
    if let (Some(after), Some(length)) = (args.outage_after, args.outage_for) {
        tokio::time::sleep(Duration::from_secs_f64(after.max(0.0))).await;
        each(&|p: &Proxy| p.set_down(true));
        eprintln!("outage: everything lost for {length} s");
        tokio::time::sleep(Duration::from_secs_f64(length.max(0.0))).await;
        each(&|p: &Proxy| p.set_down(false));
        eprintln!("outage over");
    }
    // SIGUSR1 cuts the network, the next one brings it back (for tests
    // that decide when).
    let mut toggles = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let mut switches = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())?;
    let mut down = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = toggles.recv() => {
                down = !down;
                each(&|p: &Proxy| p.set_down(down));
                eprintln!("{}", if down { "network down (SIGUSR1 again brings it back)" } else { "network up" });
            }
            _ = switches.recv() => {
                impaired = !impaired;
                each(&|p: &Proxy| p.set_impaired(impaired));
                eprintln!("{}", if impaired { "network impaired" } else { "network clean" });
            }
        }
    }
    let stats = proxies.iter().map(Proxy::stats).fold(ProxyStats::default(), |a, s| ProxyStats {
        relayed: a.relayed + s.relayed,
        dropped: a.dropped + s.dropped,
        clients: a.clients + s.clients,
    });
    println!("relayed {} datagrams, dropped {}, for {} clients", stats.relayed, stats.dropped, stats.clients);
    Ok(())
}

/// `address` with its port `offset` higher.
fn shifted(address: SocketAddr, offset: u16) -> anyhow::Result<SocketAddr> {
    let port = address.port().checked_add(offset).filter(|_| address.port() != 0 || offset == 0);
    let port = port.with_context(|| format!("{address} has no port {offset} after it"))?;
    Ok(SocketAddr::new(address.ip(), port))
}
