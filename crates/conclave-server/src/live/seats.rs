//! Which connection holds which seat. A seat's id is the id of the
//! connection that first took it (the room numbers participants that way);
//! a second tab of the same account, or a resumed connection, takes the
//! seat over.

use super::protocol::ConnectionId;
use conclave_proto::signal::ParticipantId;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Seats {
    holder: HashMap<ParticipantId, ConnectionId>,
    seat: HashMap<ConnectionId, ParticipantId>,
}

impl Seats {
    /// Gives `seat` to `connection`; returns the connection that held it
    /// before, if another (it is to be told it was replaced, and closed).
    pub fn attach(&mut self, seat: ParticipantId, connection: ConnectionId) -> Option<ConnectionId> {
        let previous = self.holder.insert(seat, connection).filter(|old| *old != connection);
        if let Some(old) = previous {
            self.seat.remove(&old);
        }
        self.seat.insert(connection, seat);
        previous
    }

    /// Frees `seat`; returns the connection that held it.
    pub fn detach(&mut self, seat: ParticipantId) -> Option<ConnectionId> {
        let connection = self.holder.remove(&seat)?;
        self.seat.remove(&connection);
        Some(connection)
    }

    /// A fresh join's connection was given a seat it is not numbered by
    /// (the same account's existing seat): it moves there.
    pub fn rebind(&mut self, connection: ConnectionId, seat: ParticipantId) -> Option<ConnectionId> {
        self.holder.remove(&connection);
        self.seat.remove(&connection);
        self.attach(seat, connection)
    }

    /// The seat `connection` speaks for, if it still holds one.
    pub fn seat_of(&self, connection: ConnectionId) -> Option<ParticipantId> {
        let seat = *self.seat.get(&connection)?;
        (self.holder.get(&seat) == Some(&connection)).then_some(seat)
    }

    /// The connection holding `seat`, if any.
    pub fn holder(&self, seat: ParticipantId) -> Option<ConnectionId> {
        self.holder.get(&seat).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.holder.is_empty()
    }

    pub fn seats(&self) -> Vec<ParticipantId> {
        self.holder.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_moves_to_its_new_connection_and_the_old_one_learns_it() {
        let mut seats = Seats::default();
        assert_eq!(seats.attach(1, 1), None);
        // Connection 5 joined fresh, then turned out to be seat 1's account.
        assert_eq!(seats.attach(5, 5), None);
        assert_eq!(seats.rebind(5, 1), Some(1));
        assert_eq!((seats.seat_of(5), seats.seat_of(1), seats.holder(1)), (Some(1), None, Some(5)));
        assert_eq!(seats.seats(), vec![1]);
        assert_eq!(seats.detach(1), Some(5));
        assert!(seats.is_empty());
    }
}
