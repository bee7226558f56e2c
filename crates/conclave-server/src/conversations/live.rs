//! This node's live connections to devices: what happens in a
//! conversation (its log grew, someone types or reads) is told at once to
//! every device of its members connected here, and a device's inbox news
//! to that device. New entries travel with the news to each device that
//! may read them (the same ciphertext the API serves it), so a busy
//! conversation costs no read per message per device; any other device
//! hears only that the log grew, and reads it through the API, which
//! decides what it may see. Each event is serialised once, whoever hears it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use conclave_proto::conversation::LiveEvent;
use tokio::sync::broadcast;

/// Events queued per account before a slow connection is told to resync
/// (each of its devices hears of every new entry on its own).
const BACKLOG: usize = 1024;

/// An event (as the JSON text sent), for every device of an account or
/// for one of them; `None` asks the connections to check at once that
/// they may stay open (a device was revoked, the account deactivated).
#[derive(Debug, Clone)]
pub struct Addressed {
    pub device: Option<Arc<str>>,
    pub event: Option<Arc<str>>,
}

impl Addressed {
    pub fn is_for(&self, device: &str) -> bool {
        self.device.as_deref().is_none_or(|d| d == device)
    }
}

#[derive(Default)]
pub struct LiveHub {
    accounts: Mutex<HashMap<String, broadcast::Sender<Addressed>>>,
    /// Each device's open connections here.
    connected: Arc<Mutex<HashMap<String, usize>>>,
}

/// A device's connection, counted while it lives.
pub struct Connected {
    device: String,
    connected: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let mut connected = self.connected.lock().expect("live hub lock");
        if let Some(count) = connected.get_mut(&self.device) {
            *count -= 1;
            if *count == 0 {
                connected.remove(&self.device);
            }
        }
    }
}

impl LiveHub {
    /// Counts `device` as connected here until the guard is dropped.
    pub fn connect(&self, device: &str) -> Connected {
        *self.connected.lock().expect("live hub lock").entry(device.to_owned()).or_default() += 1;
        Connected { device: device.to_owned(), connected: self.connected.clone() }
    }

    pub fn is_connected(&self, device: &str) -> bool {
        self.connected.lock().expect("live hub lock").contains_key(device)
    }

    /// Events for `account`'s devices from now on.
    pub fn subscribe(&self, account: &str) -> broadcast::Receiver<Addressed> {
        let mut accounts = self.accounts.lock().expect("live hub lock");
        accounts.retain(|_, sender| sender.receiver_count() > 0);
        accounts.entry(account.to_owned()).or_insert_with(|| broadcast::channel(BACKLOG).0).subscribe()
    }

    /// Asks `account`'s connections (or one device's) to check now that
    /// they may stay open.
    pub fn recheck(&self, account: &str, device: Option<&str>) {
        if let Some(sender) = self.accounts.lock().expect("live hub lock").get(account) {
            let _ = sender.send(Addressed { device: device.map(Arc::from), event: None });
        }
    }

    /// Tells the connected devices of these accounts (or of one device).
    pub fn publish<'a>(&self, accounts: impl IntoIterator<Item = &'a str>, device: Option<&str>, event: LiveEvent) {
        let text = serialised(&event);
        let device = device.map(Arc::from);
        let senders = self.accounts.lock().expect("live hub lock");
        for account in accounts {
            if let Some(sender) = senders.get(account) {
                let _ = sender.send(Addressed { device: device.clone(), event: Some(text.clone()) });
            }
        }
    }

    /// Tells each of these devices (with its account) one of two events:
    /// `readable` to those `may_read` lets read, `plain` to the others.
    pub fn publish_to_devices<'a>(
        &self,
        devices: impl IntoIterator<Item = (&'a str, &'a str)>,
        may_read: impl Fn(&str) -> bool,
        readable: &LiveEvent,
        plain: &LiveEvent,
    ) {
        let (readable, plain) = (serialised(readable), serialised(plain));
        let senders = self.accounts.lock().expect("live hub lock");
        for (account, device) in devices {
            // Nobody of this account listens here: nothing to address.
            let Some(sender) = senders.get(account) else { continue };
            let event = if may_read(device) { readable.clone() } else { plain.clone() };
            let _ = sender.send(Addressed { device: Some(Arc::from(device)), event: Some(event) });
        }
    }
}

/// An event as the text sent, made once for every connection that hears it.
fn serialised(event: &LiveEvent) -> Arc<str> {
    serde_json::to_string(event).expect("live events serialise").into()
}
