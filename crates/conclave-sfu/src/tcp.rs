//! ICE over TCP (RFC 6544) for the driver: the listener on the media's TCP
//! port, and each connection's RFC 4571 framing (a 16-bit length, then one
//! packet) both ways. Frames become packets for the SFU as plain data; the
//! SFU's TCP transmits go back out on the connection they are addressed to.
//! For participants behind firewalls that block UDP: slower under loss than
//! UDP (a lost segment holds up the ones behind it), but media all the same.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Connections held at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// A connection must say something (its first ICE check) this soon.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
/// Packets queued for one connection before its newest are dropped: a
/// participant whose TCP cannot keep up loses packets, as on UDP, instead
/// of holding the SFU up.
const QUEUED_PER_CONNECTION: usize = 512;
/// Largest frame accepted (RFC 4571 allows 65535; media packets are below 1500).
pub(crate) const MAX_FRAME: usize = 2048;

/// One packet a connection delivered, for the SFU.
#[derive(Debug)]
pub(crate) struct TcpFrame {
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
}

/// The open connections' outgoing queues, by remote address.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    writers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
}

impl Connections {
    /// Queues `packet` for the connection from `to`; dropped when it is
    /// gone or its queue is full.
    pub fn send(&self, to: SocketAddr, packet: &[u8]) {
        let writers = self.writers.lock().expect("connections lock");
        if let Some(writer) = writers.get(&to) {
            let _ = writer.try_send(packet.to_vec());
        }
    }

    fn open(&self, from: SocketAddr) -> Option<mpsc::Receiver<Vec<u8>>> {
        let mut writers = self.writers.lock().expect("connections lock");
        if writers.len() >= MAX_CONNECTIONS {
            return None;
        }
        let (tx, rx) = mpsc::channel(QUEUED_PER_CONNECTION);
        writers.insert(from, tx);
        Some(rx)
    }

    fn close(&self, from: SocketAddr) {
        self.writers.lock().expect("connections lock").remove(&from);
    }
}

/// Accepts connections for as long as the SFU runs, each read into `frames`.
pub(crate) async fn accept(listener: TcpListener, connections: Connections, frames: mpsc::Sender<TcpFrame>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %err, "media TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if frames.is_closed() {
            return;
        }
        let Some(outgoing) = connections.open(from) else {
            tracing::warn!(%from, "too many media TCP connections; refusing one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, from, connections.clone(), outgoing, frames.clone()));
    }
}

async fn serve(
    stream: TcpStream,
    from: SocketAddr,
    connections: Connections,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    frames: mpsc::Sender<TcpFrame>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let reading = async {
        let mut first = true;
        loop {
            let mut length = [0u8; 2];
            let read = reader.read_exact(&mut length);
            let read =
                if first { tokio::time::timeout(FIRST_FRAME_WITHIN, read).await.map_err(|_| ())? } else { read.await };
            read.map_err(drop)?;
            first = false;
            let length = usize::from(u16::from_be_bytes(length));
            if length == 0 || length > MAX_FRAME {
                tracing::debug!(%from, length, "media TCP frame out of bounds; closing");
                return Err(());
            }
            let mut bytes = vec![0u8; length];
            reader.read_exact(&mut bytes).await.map_err(drop)?;
            frames.send(TcpFrame { from, bytes }).await.map_err(drop)?;
        }
    };
    let writing = async {
        while let Some(packet) = outgoing.recv().await {
            let mut framed = Vec::with_capacity(packet.len() + 2);
            framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            framed.extend_from_slice(&packet);
            writer.write_all(&framed).await.map_err(drop)?;
        }
        Ok::<(), ()>(())
    };
    // Either direction failing ends the connection.
    let _: Result<((), ()), ()> = tokio::try_join!(reading, writing);
    connections.close(from);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn listening() -> (SocketAddr, Connections, mpsc::Receiver<TcpFrame>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Connections::default();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(accept(listener, connections.clone(), tx));
        (addr, connections, rx)
    }

    #[tokio::test]
    async fn frames_arrive_whole_and_replies_go_back_framed() {
        let (addr, connections, mut frames) = listening().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        // Two frames in one write, the second split across two.
        client.write_all(&[0, 3, 1, 2, 3, 0, 2, 9]).await.unwrap();
        client.write_all(&[8]).await.unwrap();
        let first = frames.recv().await.unwrap();
        assert_eq!(first.bytes, [1, 2, 3]);
        assert_eq!(first.from, client.local_addr().unwrap());
        assert_eq!(frames.recv().await.unwrap().bytes, [9, 8]);
        connections.send(first.from, &[7, 7, 7, 7]);
        let mut reply = [0u8; 6];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [0, 4, 7, 7, 7, 7]);
    }

    #[tokio::test]
    async fn an_oversized_frame_closes_the_connection() {
        let (addr, connections, mut frames) = listening().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&[0xff, 0xff, 1]).await.unwrap();
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "the server closed it");
        assert!(frames.try_recv().is_err(), "nothing reached the SFU");
        assert!(connections.writers.lock().unwrap().is_empty());
    }
}
