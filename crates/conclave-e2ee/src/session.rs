//! A participant's end-to-end encryption in one meeting: its MLS group
//! membership and the SFrame keys of the current epoch, renewed at every
//! epoch (whenever anyone joins or leaves), so a member who left can read
//! nothing sent afterwards.

use crate::keys::{base_key, kid, split_kid, EPOCH_BITS};
use crate::mls::{security_code, CommitJudge, GroupMember, MlsError, Processed};
use crate::sframe::{CipherSuite, SframeError, SframeReceiver, SframeSender};

pub struct E2eeSession<M: GroupMember> {
    pub member: M,
    suite: CipherSuite,
    sender: Option<SframeSender>,
    receiver: SframeReceiver,
    epoch: Option<u64>,
}

impl<M: GroupMember> E2eeSession<M> {
    pub fn new(member: M, suite: CipherSuite) -> Self {
        Self { member, suite, sender: None, receiver: SframeReceiver::default(), epoch: None }
    }

    /// Takes the keys of the group's current epoch. Frames of the previous
    /// epoch from members still in the group stay readable (they may be in
    /// flight while the commit spreads); everything older is forgotten.
    pub fn rekey(&mut self) -> Result<(), MlsError> {
        let (Some(epoch), Some(me)) = (self.member.epoch(), self.member.leaf_index()) else {
            return Err(MlsError::NoGroup);
        };
        if self.epoch == Some(epoch) {
            return Ok(());
        }
        let secret = self.member.sframe_epoch_secret(self.suite)?;
        let members = self.member.members();
        let previous = self.epoch.map(|e| e & ((1 << EPOCH_BITS) - 1));
        self.receiver.retain_keys(|k| {
            let (leaf, low) = split_kid(k);
            Some(low) == previous && members.contains(&leaf)
        });
        for leaf in &members {
            self.receiver.add_key(self.suite, kid(*leaf, epoch), &base_key(self.suite, &secret, *leaf));
        }
        self.sender = Some(SframeSender::new(self.suite, kid(me, epoch), &base_key(self.suite, &secret, me)));
        self.epoch = Some(epoch);
        Ok(())
    }

    /// Processes a message from the group, taking new keys after a commit
    /// (one `judge` lets through; see [`GroupMember::process`]).
    pub fn process(&mut self, message: &[u8], judge: CommitJudge<'_>) -> Result<Processed, MlsError> {
        let processed = self.member.process(message, judge)?;
        match processed {
            Processed::NewEpoch(_) => self.rekey()?,
            Processed::Removed => self.forget_keys(),
            _ => {}
        }
        Ok(processed)
    }

    /// Out of the group: no key of ours may encrypt or decrypt more.
    pub fn forget_keys(&mut self) {
        self.sender = None;
        self.receiver = SframeReceiver::default();
    }

    /// Applies this member's own commit once the delivery service ordered
    /// it, and takes the new epoch's keys.
    pub fn confirm_commit(&mut self) -> Result<(), MlsError> {
        self.member.confirm_commit()?;
        self.rekey()
    }

    pub fn encrypt_frame(&mut self, frame: &[u8], metadata: &[u8]) -> Result<Vec<u8>, SframeError> {
        let sender = self.sender.as_mut().ok_or(SframeError::UnknownKey(u64::MAX))?;
        sender.encrypt(frame, metadata)
    }

    pub fn decrypt_frame(&mut self, frame: &[u8], metadata: &[u8]) -> Result<Vec<u8>, SframeError> {
        self.receiver.decrypt(frame, metadata)
    }

    /// The code everyone compares aloud; it changes at every epoch.
    pub fn security_code(&self) -> Option<String> {
        self.member.epoch_authenticator().map(|a| security_code(&a))
    }
}
