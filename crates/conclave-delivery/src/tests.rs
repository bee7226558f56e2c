use super::*;

type Service = DeliveryService<u64>;

fn present(ids: &[u64]) -> impl Fn(&u64) -> bool + '_ {
    move |p| ids.contains(p)
}

fn proposed(epoch: u64, commit: &str, welcome: Option<&str>, added: &[u64], removed: &[u64]) -> ProposedCommit<u64> {
    ProposedCommit {
        epoch,
        commit: commit.into(),
        welcome: welcome.map(Into::into),
        added: added.to_vec(),
        removed: removed.to_vec(),
    }
}

fn add(to: u64, member: u64, kp: &str, committer: u64) -> Delivery<u64> {
    Delivery::AddRequest { to, member, key_package: kp.into(), committer }
}

fn remove(to: u64, member: u64, committer: u64) -> Delivery<u64> {
    Delivery::RemoveRequest { to, member, committer }
}

fn refused(out: &[Delivery<u64>], to: u64) -> Option<CommitRefusal> {
    match out {
        [Delivery::Rejected { to: t, reason, .. }] if *t == to => Some(*reason),
        _ => None,
    }
}

/// A group of 1, 2 and 3, made by 1.
fn three() -> Service {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    ds.key_package(3, "kp".into());
    ds.commit(1, proposed(0, "c", Some("w"), &[2, 3], &[]), present(&[1, 2, 3]));
    ds
}

#[test]
fn the_first_creates_the_group_and_later_ones_are_added_by_it() {
    let mut ds = Service::default();
    assert_eq!(ds.key_package(1, "kp1".into()), vec![Delivery::CreateGroup { to: 1 }]);
    assert_eq!(ds.key_package(2, "kp2".into()), vec![add(1, 2, "kp2", 1)]);
    let out = ds.commit(1, proposed(0, "c1", Some("w"), &[2], &[]), present(&[1, 2]));
    assert_eq!(
        out,
        vec![
            // The committer's confirmation: only now does it apply its commit.
            Delivery::Commit { to: 1, from: 1, epoch: 1, commit: "c1".into() },
            Delivery::Welcome { to: 2, epoch: 1, welcome: "w".into(), committer: 1, members: vec![1, 2] },
        ]
    );
    assert_eq!((ds.epoch(), ds.members()), (Some(1), [1, 2].into()));
}

#[test]
fn every_member_hears_each_request_and_who_is_to_carry_it_out() {
    let mut ds = three();
    assert_eq!(ds.key_package(4, "kp4".into()), vec![add(1, 4, "kp4", 1), add(2, 4, "kp4", 1), add(3, 4, "kp4", 1)]);
    let out = ds.membership(present(&[1, 2, 4]));
    assert_eq!(out, vec![remove(1, 3, 1), remove(2, 3, 1), remove(3, 3, 1)], "and to the one leaving");
}

#[test]
fn a_newcomer_hears_what_is_still_to_be_done() {
    let mut ds = three();
    ds.key_package(4, "kp4".into());
    ds.key_package(5, "kp5".into());
    ds.membership(present(&[1, 2, 4, 5]));
    let out = ds.commit(1, proposed(1, "add4", Some("w"), &[4], &[]), present(&[1, 2, 4, 5]));
    let to_newcomer: Vec<_> = out.into_iter().filter(|d| *d.recipient() == 4).collect();
    assert_eq!(
        to_newcomer,
        vec![
            Delivery::Welcome { to: 4, epoch: 2, welcome: "w".into(), committer: 1, members: vec![1, 2, 4] },
            remove(4, 3, 1),
            add(4, 5, "kp5", 1),
        ]
    );
}

#[test]
fn a_stale_commit_is_refused_so_nobody_forks() {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), present(&[1, 2]));
    ds.key_package(3, "kp".into());
    let out = ds.commit(1, proposed(0, "late", Some("w"), &[3], &[]), present(&[1, 2, 3]));
    assert_eq!(refused(&out, 1), Some(CommitRefusal::Stale));
    assert_eq!(ds.epoch(), Some(1));
}

#[test]
fn only_the_designated_committer_commits() {
    let mut ds = three();
    // Member 3 tries to cut the first member out of the group.
    let rogue = proposed(1, "rm1", None, &[], &[1]);
    assert_eq!(ds.check(&3, &rogue, present(&[1, 2, 3])), Err(CommitRefusal::NotCommitter));
    assert_eq!(refused(&ds.commit(3, rogue, present(&[1, 2, 3])), 3), Some(CommitRefusal::NotCommitter));
    // Even a harmless-looking commit from a non-committer is refused.
    assert!(refused(&ds.commit(2, proposed(1, "update", None, &[], &[]), present(&[1, 2, 3])), 2).is_some());
    assert_eq!((ds.epoch(), ds.members()), (Some(1), [1, 2, 3].into()));
}

#[test]
fn the_committer_removes_only_whom_the_service_asked_to_remove() {
    let mut ds = three();
    let rogue = proposed(1, "rm3", None, &[], &[3]);
    assert_eq!(ds.check(&1, &rogue, present(&[1, 2, 3])), Err(CommitRefusal::UnaskedRemoval));
    // Once 3 has left, its removal is what the service asked for.
    ds.membership(present(&[1, 2]));
    let out = ds.commit(1, proposed(1, "rm3", None, &[], &[3]), present(&[1, 2]));
    assert!(out.iter().all(|d| matches!(d, Delivery::Commit { .. })));
    assert_eq!(ds.members(), [1, 2].into());
}

#[test]
fn no_welcome_for_anyone_not_present_or_not_asked_for() {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    // Participant 2 was sent back to the waiting room (or left) meanwhile.
    assert_eq!(
        refused(&ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), present(&[1])), 1),
        Some(CommitRefusal::UnaskedAdd)
    );
    // Nor for someone who never asked.
    assert_eq!(ds.check(&1, &proposed(0, "c", Some("w"), &[3], &[]), present(&[1, 3])), Err(CommitRefusal::UnaskedAdd));
    assert_eq!(ds.epoch(), Some(0));
}

#[test]
fn a_departure_asks_for_a_removal_and_a_departed_committer_is_replaced_by_the_longest_present() {
    let mut ds = three();
    assert!(ds.membership(present(&[1, 2])).contains(&remove(1, 3, 1)));
    // The committer leaves before removing anyone: the next member takes
    // over both, and every member hears it.
    let out = ds.membership(present(&[2]));
    assert_eq!(ds.committer(), Some(&2));
    assert_eq!(out, vec![remove(2, 1, 2), remove(2, 3, 2)]);
    let out = ds.commit(2, proposed(1, "rm", None, &[], &[1, 3]), present(&[2]));
    let to: Vec<u64> = out.iter().map(|d| *d.recipient()).collect();
    assert_eq!(to, vec![2, 1, 3], "its confirmation, and the news to the removed");
    assert!(out.iter().all(|d| matches!(d, Delivery::Commit { from: 2, epoch: 2, .. })));
    assert_eq!(ds.members(), [2].into());
}

#[test]
fn the_next_committer_is_the_longest_present_whatever_the_ids_say() {
    // Devices named by ids that do not sort by arrival (a conversation's).
    let mut ds = DeliveryService::<String>::default();
    ds.key_package("zoe".into(), "kp".into());
    ds.key_package("mia".into(), "kp".into());
    ds.commit(
        "zoe".into(),
        ProposedCommit {
            epoch: 0,
            commit: "c".into(),
            welcome: Some("w".into()),
            added: vec!["mia".into()],
            removed: vec![],
        },
        |_| true,
    );
    ds.key_package("ada".into(), "kp".into());
    ds.commit(
        "zoe".into(),
        ProposedCommit {
            epoch: 1,
            commit: "c".into(),
            welcome: Some("w".into()),
            added: vec!["ada".into()],
            removed: vec![],
        },
        |_| true,
    );
    ds.membership(|m| m != "zoe");
    assert_eq!(ds.committer().map(String::as_str), Some("mia"), "mia arrived before ada");
}

#[test]
fn outsiders_cannot_commit_or_talk_to_the_group() {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    assert!(refused(&ds.commit(9, proposed(0, "c", None, &[], &[]), present(&[1, 9])), 9).is_some());
    assert_eq!(refused(&ds.application(9, "x".into()), 9), Some(CommitRefusal::NotMember));
    assert!(ds.application(1, "hello".into()).is_empty(), "alone: nobody to tell");
}

#[test]
fn a_member_on_a_new_device_is_removed_then_added_again() {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), present(&[1, 2]));
    // Participant 2's seat is taken over by a new device: its old leaf goes.
    assert_eq!(ds.device_replaced(&2, present(&[1, 2])), vec![remove(1, 2, 1), remove(2, 2, 1)]);
    // The new device's KeyPackage is taken, though the old one is still in the group...
    assert!(ds.key_package(2, "kp-new".into()).contains(&add(1, 2, "kp-new", 1)));
    // ...but it can be added only once the old leaf is removed (or in the same commit).
    assert!(refused(&ds.commit(1, proposed(1, "c", Some("w"), &[2], &[]), present(&[1, 2])), 1).is_some());
    ds.commit(1, proposed(1, "rm", None, &[], &[2]), present(&[1, 2]));
    let out = ds.commit(1, proposed(2, "add", Some("w2"), &[2], &[]), present(&[1, 2]));
    assert!(out.iter().any(|d| matches!(d, Delivery::Welcome { to: 2, epoch: 3, .. })));
}

#[test]
fn a_committer_on_a_new_device_hands_its_work_to_another_member() {
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), present(&[1, 2]));
    assert_eq!(ds.device_replaced(&1, present(&[1, 2])), vec![remove(2, 1, 2)]);
    assert_eq!(ds.committer(), Some(&2));
    // Alone, a member on a new device simply starts the group again.
    let mut alone = Service::default();
    alone.key_package(1, "kp".into());
    assert!(alone.device_replaced(&1, present(&[1])).is_empty());
    assert_eq!(alone.key_package(1, "kp-new".into()), vec![Delivery::CreateGroup { to: 1 }]);
}

#[test]
fn the_whole_state_survives_storage_and_the_group_carries_on() {
    let mut ds = three();
    ds.key_package(4, "kp4".into());
    ds.membership(present(&[1, 2, 4]));
    // Stored (as a conversation's group is between messages) and reloaded.
    let stored = serde_json::to_string(&ds).unwrap();
    let mut reloaded: Service = serde_json::from_str(&stored).unwrap();
    assert_eq!(reloaded, ds);
    let out = reloaded.commit(1, proposed(1, "rm3-add4", Some("w"), &[4], &[3]), present(&[1, 2, 4]));
    assert!(out.iter().any(|d| matches!(d, Delivery::Welcome { to: 4, epoch: 2, .. })));
    assert_eq!((reloaded.epoch(), reloaded.members()), (Some(2), [1, 2, 4].into()));
}

#[test]
fn a_large_groups_welcome_is_taken_but_nothing_unbounded() {
    // A Welcome carries the whole ratchet tree: for a channel of a thousand
    // people with two devices each it is far beyond a message's limit.
    let mut ds = Service::default();
    ds.key_package(1, "kp".into());
    ds.key_package(2, "kp".into());
    let large = "w".repeat(MAX_BLOB * 20);
    assert_eq!(ds.check(&1, &proposed(0, "c", Some(&large), &[2], &[]), present(&[1, 2])), Ok(()));
    let too_large = "w".repeat(MAX_HANDSHAKE + 1);
    assert_eq!(
        ds.check(&1, &proposed(0, "c", Some(&too_large), &[2], &[]), present(&[1, 2])),
        Err(CommitRefusal::Malformed)
    );
    assert_eq!(
        ds.check(&1, &proposed(0, &too_large, Some("w"), &[2], &[]), present(&[1, 2])),
        Err(CommitRefusal::Malformed)
    );
    // Messages and key packages keep the small limit.
    ds.commit(1, proposed(0, "c", Some(&large), &[2], &[]), present(&[1, 2]));
    assert_eq!(refused(&ds.key_package(3, "k".repeat(MAX_BLOB + 1)), 3), Some(CommitRefusal::UnneededKeyPackage));
    assert_eq!(ds.members(), [1, 2].into());
}

#[test]
fn the_service_follows_each_devices_leaf_and_says_where_its_own_removal_proposal_applies() {
    let mut ds = three();
    assert_eq!([1, 2, 3].map(|m| ds.leaf(&m)), [Some(0), Some(1), Some(2)]);
    assert_eq!(ds.removal_at(&2), None, "nobody asked to remove 2");

    // 2 leaves: the server's proposal is for this epoch, at 2's leaf.
    ds.membership(present(&[1, 3]));
    assert_eq!(ds.removal_at(&2), Some((1, 1)));
    // Meanwhile 4 asks to join and the committer adds it without removing
    // 2: the proposal's epoch is over, so the removal is asked again (with
    // a proposal for the new epoch), and 4 takes the leftmost empty leaf
    // only once 2's is empty.
    ds.key_package(4, "kp4".into());
    let out = ds.commit(1, proposed(1, "c", Some("w"), &[4], &[]), present(&[1, 3, 4]));
    assert!(out.contains(&remove(1, 2, 1)) && out.contains(&remove(3, 2, 1)));
    let welcome = out.iter().position(|d| matches!(d, Delivery::Welcome { to: 4, .. })).unwrap();
    assert_eq!(out.iter().position(|d| *d == remove(4, 2, 1)).map(|r| r > welcome), Some(true), "after the Welcome");
    assert_eq!((ds.leaf(&4), ds.removal_at(&2)), (Some(3), Some((2, 1))));
    ds.commit(1, proposed(2, "c", None, &[], &[2]), present(&[1, 3, 4]));
    assert_eq!((ds.leaf(&2), ds.removal_at(&2)), (None, None));
    ds.key_package(5, "kp5".into());
    ds.commit(1, proposed(3, "c", Some("w"), &[5], &[]), present(&[1, 3, 4, 5]));
    assert_eq!(ds.leaf(&5), Some(1), "the leftmost empty leaf");
}

#[test]
fn a_group_stored_before_leaves_were_followed_gets_no_server_proposals() {
    let mut ds = three();
    let mut stored: serde_json::Value = serde_json::to_value(&ds).unwrap();
    stored.as_object_mut().unwrap().remove("leaves");
    ds = serde_json::from_value(stored).unwrap();
    ds.membership(present(&[1, 3]));
    assert_eq!((ds.leaf(&1), ds.removal_at(&2)), (None, None));
    // Its members remove devices by proposals of their own, as before.
    let out = ds.commit(1, proposed(1, "c", None, &[], &[2]), present(&[1, 3]));
    assert!(out.iter().any(|d| matches!(d, Delivery::Commit { .. })));
}
