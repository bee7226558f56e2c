//! Conversations as their members live them, one rule per scenario.

use conclave_conversation::*;
use conclave_delivery::{Delivery, ProposedCommit};

const NOW: i64 = 1_000_000;
const HOUR: i64 = 3600 * 1000;

fn person(account: &str, devices: &[&str]) -> Newcomer {
    Newcomer { account: account.into(), devices: devices.iter().map(|d| d.to_string()).collect(), external: false }
}

fn plain(kind: Kind, founder: Newcomer, others: Vec<Newcomer>) -> Conversation {
    Conversation::found(kind, Encryption::Plain, ConversationPolicy::default(), founder, others, NOW)
        .expect("founded")
        .0
}

fn say(c: &mut Conversation, device: &str, id: &str, text: &str) -> Result<Seq, Refusal> {
    match c.handle(send(device, id, text, None), NOW)?.as_slice() {
        [Effect::Append(entry)] | [Effect::Duplicate(_), .., Effect::Append(entry)] => Ok(entry.seq),
        [Effect::Duplicate(seq)] => Ok(*seq),
        other => panic!("unexpected effects {other:?}"),
    }
}

fn send(device: &str, id: &str, text: &str, earlier: Option<Seq>) -> Input {
    Input::Send(OutgoingMessage {
        device: device.into(),
        client_id: id.into(),
        epoch: None,
        content: text.into(),
        reference: None,
        earlier,
        history: None,
        control: false,
        files: Vec::new(),
    })
}

fn target(seq: Seq, author: &str, at_ms: i64) -> Target {
    Target { seq, author: author.into(), at_ms, deleted: false, thread: None, is_message: true }
}

#[test]
fn a_direct_message_is_between_exactly_two_people_and_cannot_grow() {
    let refused = Conversation::found(
        Kind::Direct,
        Encryption::Mls,
        ConversationPolicy::default(),
        person("ada", &["ada-1"]),
        vec![person("bob", &["bob-1"]), person("cy", &["cy-1"])],
        NOW,
    );
    assert_eq!(refused.err(), Some(Refusal::Malformed));
    let mut dm = plain(Kind::Direct, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    assert!(dm.members().values().all(|m| m.role == Role::Member), "nobody owns a direct message");
    let add = Input::Add { by: "ada".into(), newcomers: vec![person("cy", &["cy-1"])] };
    assert_eq!(dm.handle(add, NOW), Err(Refusal::NotAllowed));
    assert_eq!(dm.handle(Input::Leave { account: "bob".into() }, NOW), Err(Refusal::NotAllowed));
    // Bob's account is deactivated, then reactivated: he comes back to it,
    // and nobody else can come in that way.
    dm.handle(Input::AccountDeactivated { account: "bob".into() }, NOW).unwrap();
    assert_eq!(dm.handle(Input::Join { newcomer: person("cy", &["cy-1"]) }, NOW), Err(Refusal::NotAllowed));
    dm.handle(Input::Join { newcomer: person("bob", &["bob-2"]) }, NOW).unwrap();
    assert_eq!(dm.members().len(), 2);
}

#[test]
fn a_retried_message_is_answered_with_the_first_ones_entry() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    let first = say(&mut group, "ada-1", "m-1", "hello").unwrap();
    group.handle(Input::Archive { by: "ada".into(), archived: true }, NOW).unwrap();
    // The store holds it already: a retry, even of a conversation archived since.
    let again = group.handle(send("ada-1", "m-1", "hello", Some(first)), NOW).unwrap();
    assert_eq!(again, vec![Effect::Duplicate(first)]);
    assert_eq!(group.handle(send("ada-1", "m-2", "hello", None), NOW), Err(Refusal::Archived));
    // Not a member any more: not even a retry is answered.
    group.handle(Input::Archive { by: "ada".into(), archived: false }, NOW).unwrap();
    group.handle(Input::Leave { account: "ada".into() }, NOW).unwrap();
    assert_eq!(group.handle(send("ada-1", "m-1", "hello", Some(first)), NOW), Err(Refusal::NotMember));
}

#[test]
fn a_device_that_is_not_a_members_reads_and_sends_nothing() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![]);
    assert_eq!(say(&mut group, "eve-1", "x", "let me in"), Err(Refusal::NotMember));
    assert_eq!(group.readable_from("eve-1"), None);
    assert!(!group.may_read("eve-1", 1));
}

#[test]
fn a_locked_channel_is_joined_only_through_its_admins() {
    let mut channel = plain(Kind::Channel, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    channel.handle(Input::Join { newcomer: person("cy", &["cy-1"]) }, NOW).expect("open channels are joined freely");
    assert_eq!(channel.handle(Input::Lock { by: "bob".into(), locked: true }, NOW), Err(Refusal::NotAllowed));
    channel.handle(Input::Lock { by: "ada".into(), locked: true }, NOW).unwrap();
    assert_eq!(channel.handle(Input::Join { newcomer: person("dee", &["dee-1"]) }, NOW), Err(Refusal::Locked));
    let by_member = Input::Add { by: "bob".into(), newcomers: vec![person("dee", &["dee-1"])] };
    assert_eq!(channel.handle(by_member, NOW), Err(Refusal::Locked));
    let by_owner = Input::Add { by: "ada".into(), newcomers: vec![person("dee", &["dee-1"])] };
    assert!(channel.handle(by_owner, NOW).is_ok());
}

#[test]
fn the_organisation_puts_its_groups_people_in_a_team_channel_and_takes_them_out() {
    let mut channel = plain(Kind::Channel, person("ada", &["ada-1"]), vec![]);
    channel.handle(Input::Lock { by: "ada".into(), locked: true }, NOW).unwrap();
    // The identity provider's group says Cy belongs: in, lock or not.
    let assign = Input::Assign { newcomer: person("cy", &["cy-1"]), group: "Engineering".into() };
    let effects = channel.handle(assign.clone(), NOW).unwrap();
    assert!(
        matches!(&effects[..], [Effect::Append(Entry { body: EntryBody::Membership { change: MembershipChange::AssignedByGroup { group }, .. }, .. })] if group == "Engineering")
    );
    assert_eq!(channel.members()["cy"].role, Role::Member);
    assert_eq!(channel.handle(assign, NOW), Ok(Vec::new()), "already in: nothing to do");
    // Out when the group says so; again is nothing.
    let unassign = Input::Unassign { account: "cy".into(), group: "Engineering".into() };
    channel.handle(unassign.clone(), NOW).unwrap();
    assert!(!channel.members().contains_key("cy"));
    assert_eq!(channel.handle(unassign, NOW), Ok(Vec::new()));
    // Only channels, and only the organisation's own people.
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![]);
    let into_group = Input::Assign { newcomer: person("cy", &["cy-1"]), group: "Engineering".into() };
    assert_eq!(group.handle(into_group, NOW), Err(Refusal::NotAllowed));
    let outsider = Newcomer { external: true, ..person("ext", &["ext-1"]) };
    assert_eq!(
        channel.handle(Input::Assign { newcomer: outsider, group: "Engineering".into() }, NOW),
        Err(Refusal::NotAllowed)
    );
}

#[test]
fn admins_remove_members_but_not_each_other_and_nobody_removes_the_owner() {
    let people = vec![person("bob", &["bob-1"]), person("cy", &["cy-1"]), person("dee", &["dee-1"])];
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), people);
    group.handle(Input::SetRole { by: "ada".into(), account: "bob".into(), role: Role::Admin }, NOW).unwrap();
    group.handle(Input::SetRole { by: "ada".into(), account: "cy".into(), role: Role::Admin }, NOW).unwrap();
    assert_eq!(
        group.handle(Input::SetRole { by: "bob".into(), account: "dee".into(), role: Role::Admin }, NOW),
        Err(Refusal::NotAllowed)
    );
    assert_eq!(group.handle(Input::Remove { by: "bob".into(), account: "cy".into() }, NOW), Err(Refusal::NotAllowed));
    assert_eq!(group.handle(Input::Remove { by: "bob".into(), account: "ada".into() }, NOW), Err(Refusal::NotAllowed));
    assert_eq!(group.handle(Input::Remove { by: "dee".into(), account: "bob".into() }, NOW), Err(Refusal::NotAllowed));
    group.handle(Input::Remove { by: "bob".into(), account: "dee".into() }, NOW).unwrap();
    assert_eq!(say(&mut group, "dee-1", "after", "still here?"), Err(Refusal::NotMember));
    assert!(!group.may_read("dee-1", group.last_seq()), "a removed member reads nothing more");
}

#[test]
fn when_the_last_owner_leaves_the_longest_standing_admin_owns_the_group() {
    let mut group =
        plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"]), person("cy", &["cy-1"])]);
    assert_eq!(
        group.handle(Input::SetRole { by: "ada".into(), account: "ada".into(), role: Role::Member }, NOW),
        Err(Refusal::LastOwner)
    );
    group.handle(Input::SetRole { by: "ada".into(), account: "cy".into(), role: Role::Admin }, NOW).unwrap();
    group.handle(Input::Leave { account: "ada".into() }, NOW).unwrap();
    assert_eq!(group.member("cy").unwrap().role, Role::Owner);
    assert_eq!(group.member("bob").unwrap().role, Role::Member);
}

#[test]
fn authors_edit_their_own_messages_within_the_policys_window() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    let seq = say(&mut group, "ada-1", "m", "helo").unwrap();
    let edit = |device: &str, at: i64| {
        Input::Send(OutgoingMessage {
            device: device.into(),
            client_id: format!("edit-{device}-{at}"),
            epoch: None,
            content: "hello".into(),
            reference: Some((Reference::Edit(seq), target(seq, "ada", NOW))),
            earlier: None,
            history: None,
            control: false,
            files: Vec::new(),
        })
    };
    assert_eq!(group.handle(edit("bob-1", NOW), NOW), Err(Refusal::NotAuthor));
    assert!(group.handle(edit("ada-1", NOW + HOUR), NOW + HOUR).is_ok());
    assert_eq!(group.handle(edit("ada-1", NOW + 25 * HOUR), NOW + 25 * HOUR), Err(Refusal::TooLate));
}

#[test]
fn a_deleted_message_is_erased_and_admins_may_delete_any_message() {
    let mut group =
        plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"]), person("cy", &["cy-1"])]);
    let seq = say(&mut group, "bob-1", "m", "oops").unwrap();
    assert_eq!(
        group.handle(Input::Delete { by: "cy".into(), target: target(seq, "bob", NOW) }, NOW),
        Err(Refusal::NotAuthor)
    );
    let late = NOW + 48 * HOUR;
    assert_eq!(
        group.handle(Input::Delete { by: "bob".into(), target: target(seq, "bob", NOW) }, late),
        Err(Refusal::TooLate)
    );
    let effects = group.handle(Input::Delete { by: "ada".into(), target: target(seq, "bob", NOW) }, late).unwrap();
    assert_eq!(effects[0], Effect::Erase(seq));
    assert!(
        matches!(&effects[1], Effect::Append(Entry { body: EntryBody::Deleted { target, .. }, .. }) if *target == seq)
    );
}

#[test]
fn threads_are_one_level_deep() {
    let mut channel = plain(Kind::Channel, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    let root = say(&mut channel, "ada-1", "root", "question").unwrap();
    let reply = |id: &str, target: Target| {
        Input::Send(OutgoingMessage {
            device: "bob-1".into(),
            client_id: id.into(),
            epoch: None,
            content: "answer".into(),
            reference: Some((Reference::Thread(target.seq), target)),
            earlier: None,
            history: None,
            control: false,
            files: Vec::new(),
        })
    };
    assert!(channel.handle(reply("r1", target(root, "ada", NOW)), NOW).is_ok());
    let in_thread = Target { thread: Some(root), ..target(root + 1, "bob", NOW) };
    assert_eq!(channel.handle(reply("r2", in_thread), NOW), Err(Refusal::BadReference));
    let missing = target(999, "ada", NOW);
    assert_eq!(channel.handle(reply("r3", missing), NOW), Err(Refusal::BadReference));
}

#[test]
fn an_archived_conversation_takes_no_messages_until_unarchived() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    group.handle(Input::Archive { by: "ada".into(), archived: true }, NOW).unwrap();
    assert_eq!(say(&mut group, "bob-1", "m", "anyone?"), Err(Refusal::Archived));
    group.handle(Input::Archive { by: "ada".into(), archived: false }, NOW).unwrap();
    assert!(say(&mut group, "bob-1", "m", "anyone?").is_ok());
}

#[test]
fn a_call_is_started_by_a_member_logged_and_remembered_through_storage() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    assert_eq!(group.latest_call(), None);
    let call = |by: &str, meeting: &str| Input::Call { by: by.into(), meeting_id: meeting.into() };
    assert_eq!(group.handle(call("eve", "m-eve"), NOW), Err(Refusal::NotMember));
    let effects = group.handle(call("bob", "m-1"), NOW).unwrap();
    assert!(
        matches!(effects.as_slice(), [Effect::Append(Entry { body: EntryBody::Call { meeting_id, by }, .. })]
            if meeting_id == "m-1" && by == "bob"),
        "{effects:?}"
    );
    group.handle(call("ada", "m-2"), NOW + HOUR).unwrap();
    let latest = CallStarted { meeting_id: "m-2".into(), by: "ada".into(), at_ms: NOW + HOUR };
    assert_eq!(group.latest_call(), Some(&latest), "the newest call is the one shown");
    let back: Conversation = serde_json::from_str(&serde_json::to_string(&group).unwrap()).unwrap();
    assert_eq!(back.latest_call(), Some(&latest));
    group.handle(Input::Archive { by: "ada".into(), archived: true }, NOW).unwrap();
    assert_eq!(group.handle(call("bob", "m-3"), NOW), Err(Refusal::Archived));
}

/// The encrypted case: devices enter the group one by one through the
/// designated committer, read from the commit that added them, and a
/// removal stops every message until the commit that carries it out.
#[test]
fn in_an_encrypted_group_a_removal_holds_messages_until_its_commit() {
    let (mut group, _) = Conversation::found(
        Kind::Group,
        Encryption::Mls,
        ConversationPolicy::default(),
        person("ada", &["ada-1"]),
        vec![person("bob", &["bob-1"])],
        NOW,
    )
    .unwrap();
    let created =
        group.handle(Input::KeyPackage { device: "ada-1".into(), key_package: "kp-ada".into() }, NOW).unwrap();
    assert_eq!(created, vec![Effect::ToDevice(Delivery::CreateGroup { to: "ada-1".into() })]);
    assert_eq!(group.readable_from("bob-1"), None, "not in the group yet");
    let asked = group.handle(Input::KeyPackage { device: "bob-1".into(), key_package: "kp-bob".into() }, NOW).unwrap();
    // The request is in the log, where every device reads it before the commit that carries it out.
    let [Effect::Append(Entry { body: EntryBody::AddRequest { member, committer, .. }, .. })] = &asked[..] else {
        panic!("the request is logged: {asked:?}")
    };
    assert_eq!((member.device_id.as_str(), member.user_id.as_str(), committer.as_str()), ("bob-1", "bob", "ada-1"));
    let commit = |epoch, added: Vec<&str>, removed: Vec<&str>| ProposedCommit {
        epoch,
        commit: format!("commit-{epoch}"),
        welcome: (!added.is_empty()).then(|| "welcome".to_string()),
        added: added.into_iter().map(String::from).collect(),
        removed: removed.into_iter().map(String::from).collect(),
    };
    let effects =
        group.handle(Input::Commit { device: "ada-1".into(), commit: commit(0, vec!["bob-1"], vec![]) }, NOW).unwrap();
    let Effect::Append(Entry { seq: commit_seq, .. }) = effects[0] else { panic!("the commit is logged first") };
    assert_eq!(group.readable_from("bob-1"), Some(commit_seq + 1), "bob reads from after the commit that added him");
    let send = |device: &str, id: &str, epoch| {
        Input::Send(OutgoingMessage {
            device: device.into(),
            client_id: id.into(),
            epoch: Some(epoch),
            content: "ciphertext".into(),
            reference: None,
            earlier: None,
            history: None,
            control: false,
            files: Vec::new(),
        })
    };
    assert_eq!(group.handle(send("bob-1", "old", 0), NOW), Err(Refusal::EpochMismatch));
    assert!(group.handle(send("bob-1", "new", 1), NOW).is_ok());

    // Bob's second device is his, but reads nothing until it is in the group.
    group.handle(Input::DeviceAdded { account: "bob".into(), device: "bob-2".into() }, NOW).unwrap();
    assert_eq!(group.handle(send("bob-2", "early", 1), NOW), Err(Refusal::UnknownDevice));

    group.handle(Input::Remove { by: "ada".into(), account: "bob".into() }, NOW).unwrap();
    assert_eq!(group.readable_from("bob-1"), None, "cut off at once");
    assert_eq!(group.handle(send("ada-1", "during", 1), NOW), Err(Refusal::EpochMismatch), "held until the commit");
    let removal = commit(1, vec![], vec!["bob-1"]);
    assert!(group.handle(Input::Commit { device: "bob-1".into(), commit: removal.clone() }, NOW).is_err());
    group.handle(Input::Commit { device: "ada-1".into(), commit: removal }, NOW).unwrap();
    assert!(group.handle(send("ada-1", "after", 2), NOW).is_ok());
    assert_eq!(group.group_devices().into_iter().collect::<Vec<_>>(), vec!["ada-1".to_string()]);
}

#[test]
fn a_conversation_carries_on_after_being_stored() {
    let mut group = plain(Kind::Group, person("ada", &["ada-1"]), vec![person("bob", &["bob-1"])]);
    say(&mut group, "ada-1", "m-1", "hello").unwrap();
    let stored = serde_json::to_string(&group).unwrap();
    // A message changes nothing stored but the log.
    say(&mut group, "bob-1", "m-2", "hi").unwrap();
    assert_eq!(serde_json::to_string(&group).unwrap(), stored);
    let mut back: Conversation = serde_json::from_str(&stored).unwrap();
    back.set_log_position(group.last_seq());
    assert_eq!(back, group);
    assert_eq!(say(&mut back, "ada-1", "m-3", "again").unwrap(), group.last_seq() + 1);
}

/// The committer's device is offline for days: the next device of the
/// group that shows up takes over once the committer's patience is out, so
/// a removal does not hold everyone's messages back.
#[test]
fn a_device_that_shows_up_takes_over_from_a_committer_that_is_away() {
    let (mut group, _) = Conversation::found(
        Kind::Group,
        Encryption::Mls,
        ConversationPolicy::default(),
        person("ada", &["ada-1"]),
        vec![person("bob", &["bob-1"]), person("cy", &["cy-1"])],
        NOW,
    )
    .unwrap();
    group.handle(Input::KeyPackage { device: "ada-1".into(), key_package: "kp-a".into() }, NOW).unwrap();
    for (n, device) in ["bob-1", "cy-1"].into_iter().enumerate() {
        group.handle(Input::KeyPackage { device: device.into(), key_package: format!("kp-{device}") }, NOW).unwrap();
        let commit = ProposedCommit {
            epoch: n as u64,
            commit: format!("add-{device}"),
            welcome: Some("welcome".into()),
            added: vec![device.into()],
            removed: vec![],
        };
        group.handle(Input::Commit { device: "ada-1".into(), commit }, NOW).unwrap();
    }
    // Ada removes Cy, and her device (the committer) goes offline.
    group.handle(Input::Remove { by: "ada".into(), account: "cy".into() }, NOW).unwrap();
    let bob_sends = |group: &mut Conversation, at| {
        let input = Input::Send(OutgoingMessage {
            device: "bob-1".into(),
            client_id: format!("b-{at}"),
            epoch: Some(2),
            content: "c".into(),
            reference: None,
            earlier: None,
            history: None,
            control: false,
            files: Vec::new(),
        });
        group.handle(input, at)
    };
    assert_eq!(bob_sends(&mut group, NOW + 1_000), Err(Refusal::EpochMismatch));
    // Too soon: Ada's device still has time.
    assert_eq!(group.handle(Input::Present { device: "bob-1".into() }, NOW + 1_000), Ok(vec![]));
    assert_eq!(group.committer().map(String::as_str), Some("ada-1"));
    let later = NOW + COMMITTER_PATIENCE_MS + 1_000;
    // A device that is not a member's does not take over.
    assert_eq!(group.handle(Input::Present { device: "cy-1".into() }, later), Ok(vec![]));
    let effects = group.handle(Input::Present { device: "bob-1".into() }, later).unwrap();
    assert_eq!(group.committer().map(String::as_str), Some("bob-1"));
    assert!(
        matches!(&effects[..], [Effect::Append(Entry { body: EntryBody::RemoveRequest { member, committer, .. }, .. })]
            if member.device_id == "cy-1" && committer == "bob-1"),
        "{effects:?}"
    );
    let removal = ProposedCommit {
        epoch: 2,
        commit: "remove-cy".into(),
        welcome: None,
        added: vec![],
        removed: vec!["cy-1".into()],
    };
    assert!(group.handle(Input::Commit { device: "ada-1".into(), commit: removal.clone() }, later).is_err());
    group.handle(Input::Commit { device: "bob-1".into(), commit: removal }, later).unwrap();
    let input = Input::Send(OutgoingMessage {
        device: "bob-1".into(),
        client_id: "after".into(),
        epoch: Some(3),
        content: "c".into(),
        reference: None,
        earlier: None,
        history: None,
        control: false,
        files: Vec::new(),
    });
    assert!(group.handle(input, later).is_ok(), "messages flow again");
    assert!(!group.committer_overdue(later + 10 * COMMITTER_PATIENCE_MS), "nothing left to do");
}

/// What a device asks of the group is bounded: one KeyPackage at a time,
/// of a sensible size, and a limit on devices waiting at once (each
/// request is copied to every member).
#[test]
fn requests_to_join_the_group_are_bounded() {
    let many: Vec<String> = (0..=MAX_WAITING_DEVICES).map(|i| format!("bob-{i}")).collect();
    let bob = Newcomer { account: "bob".into(), devices: many.iter().cloned().collect(), external: false };
    let (mut group, _) = Conversation::found(
        Kind::Group,
        Encryption::Mls,
        ConversationPolicy::default(),
        person("ada", &["ada-1"]),
        vec![bob],
        NOW,
    )
    .unwrap();
    let ask = |group: &mut Conversation, device: &str, size: usize| {
        group.handle(Input::KeyPackage { device: device.into(), key_package: "k".repeat(size) }, NOW)
    };
    ask(&mut group, "ada-1", 300).unwrap();
    assert_eq!(ask(&mut group, "bob-0", MAX_KEY_PACKAGE + 1), Err(Refusal::Malformed));
    ask(&mut group, "bob-0", 300).unwrap();
    assert_eq!(
        ask(&mut group, "bob-0", 300),
        Err(Refusal::Group(conclave_delivery::CommitRefusal::UnneededKeyPackage)),
        "once is enough"
    );
    for device in &many[1..MAX_WAITING_DEVICES] {
        ask(&mut group, device, 300).unwrap();
    }
    assert_eq!(ask(&mut group, &many[MAX_WAITING_DEVICES], 300), Err(Refusal::TooManyWaiting));
}
