//! Finding someone to talk to: the organisation's people by name or
//! address, and its channels with whether the caller is in each. Another
//! organisation's people and channels, and deactivated accounts, are never
//! found; a guest finds nothing.

use crate::conversations::{channel_request, team};
use crate::{assert_problem, on_both_engines};
use conclave_proto::conversation::{ConversationKind, CreateConversationRequest};
use conclave_proto::OrgRole;
use conclave_store::Engine;

on_both_engines!(people_are_found_by_name_or_address_within_the_organisation);
async fn people_are_found_by_name_or_address_within_the_organisation(engine: Engine) {
    let t = team(engine).await;
    let (_, linus) = t.srv.add_member(&t.ada, &t.org, "linus@acme.test", OrgRole::Member).await;
    let (_, gone) = t.srv.add_member(&t.ada, &t.org, "gone_100%@acme.test", OrgRole::Member).await;
    t.ada.deactivate_member(&t.org, &gone.user.id).await.unwrap();
    let (_, other_org) = t.srv.org_with_owner("grace.other@elsewhere.test", "Elsewhere").await;

    let emails =
        |list: conclave_proto::conversation::PeopleList| list.people.into_iter().map(|p| p.email).collect::<Vec<_>>();
    // By part of the address or the name, any case; never oneself.
    assert_eq!(emails(t.ada.find_people("GRACE").await.unwrap()), ["grace@acme.test"]);
    assert_eq!(emails(t.ada.find_people("linus").await.unwrap()), ["linus@acme.test"]);
    let everyone = emails(t.ada.find_people("").await.unwrap());
    assert!(everyone.contains(&"grace@acme.test".to_owned()) && everyone.contains(&"linus@acme.test".to_owned()));
    assert!(!everyone.contains(&"ada@acme.test".to_owned()), "the caller is not listed");
    assert!(!everyone.iter().any(|e| e.starts_with("gone")), "a deactivated account is not found: {everyone:?}");
    assert!(!everyone.iter().any(|e| e.ends_with("elsewhere.test")), "another organisation's people are not found");
    // A wildcard is a character like any other.
    assert!(emails(t.ada.find_people("%").await.unwrap()).is_empty());
    assert!(emails(t.ada.find_people("_").await.unwrap()).is_empty());
    assert_eq!(linus.user.org_id.as_deref(), Some(t.org.as_str()));
    assert_ne!(other_org.user.org_id.as_deref(), Some(t.org.as_str()));

    assert_problem!(t.ada.find_people(&"x".repeat(101)).await, 422, "validation-failed");
}

on_both_engines!(the_channel_browser_lists_the_organisations_channels_and_which_the_caller_is_in);
async fn the_channel_browser_lists_the_organisations_channels_and_which_the_caller_is_in(engine: Engine) {
    let t = team(engine).await;
    let general = t.ada.create_conversation(&channel_request("general")).await.unwrap();
    let private = CreateConversationRequest {
        kind: ConversationKind::Group,
        name: Some("secret plans".into()),
        members: vec![],
        encrypted: true,
    };
    t.ada.create_conversation(&private).await.unwrap();
    let (other, _) = t.srv.org_with_owner("owner@elsewhere.test", "Elsewhere").await;
    other.create_conversation(&channel_request("elsewhere-only")).await.unwrap();

    let listed = t.grace.list_channels().await.unwrap().channels;
    assert_eq!(
        listed.iter().map(|c| c.name.as_deref().unwrap()).collect::<Vec<_>>(),
        ["general"],
        "channels of her organisation alone, no private group"
    );
    let seen = &listed[0];
    assert_eq!(
        (seen.id.as_str(), seen.joined, seen.member_count, seen.encrypted, seen.locked),
        (general.id.as_str(), false, 1, true, false)
    );

    t.grace.join_conversation(&general.id).await.unwrap();
    let seen = t.grace.list_channels().await.unwrap().channels.remove(0);
    assert_eq!((seen.joined, seen.member_count), (true, 2));
}
