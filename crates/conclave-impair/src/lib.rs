//! A user-space network impairment proxy for media tests and benchmarks:
//! what Linux's netem would do between participants and the SFU, where the
//! kernel has none. Datagrams between each client and the upstream server
//! pass through two [`Link`]s (one each way) that lose, delay, jitter,
//! reorder and rate-limit them, from a seed, and a switch cuts everything
//! for an outage.
//!
//! [`Link`] is the model, sans-IO (a datagram and the time in; dropped, or
//! when to deliver it, out), so its figures are tested without sockets;
//! [`proxy`] is the tokio driver around it. [`Path`] puts the same two links
//! at one endpoint's own socket instead (the headless media client takes
//! one), for servers a single proxy address cannot stand in front of.

mod link;
mod path;
pub mod proxy;

pub use link::{Impairment, Link, Verdict};
pub use path::{Outage, Path, PathImpairment, PathStats};
pub use proxy::{Proxy, ProxyStats};
