//! Guests through the real server: someone from outside comes into one
//! conversation by a link and a one-time code, with an account of their
//! own that sees that conversation alone; wrong codes spend the invitation.

use crate::conversations::{all_in_group, direct_request, group_request, team, Team, WAIT};
use crate::support::PASSWORD;
use crate::{assert_problem, on_both_engines};
use conclave_client::chat::{ChatDevice, ChatEvent};
use conclave_client::Client;
use conclave_proto::conversation::{ConversationKind, CreateConversationRequest, GuestSignupRequest};
use conclave_proto::{OrgPolicyUpdate, Setting};
use conclave_store::Engine;

async fn allow_guests(t: &Team) {
    let allow = OrgPolicyUpdate { guest_access: Some(Setting::unlocked(true)), ..Default::default() };
    t.ada.update_org_policy(&t.org, &allow).await.unwrap();
}

fn taking(token: &str, code: &str) -> GuestSignupRequest {
    GuestSignupRequest {
        token: token.to_owned(),
        code: code.to_owned(),
        display_name: "Casey Client".into(),
        password: PASSWORD.into(),
    }
}

/// Another eight digits than `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:08}", (n + 1) % 100_000_000)
}

async fn a_guest_comes_in_by_link_and_code_and_sees_that_conversation_alone(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Deal room", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;

    // Off until the organisation allows it; never into a direct message,
    // and never for an address that has an account.
    assert_problem!(t.ada.invite_guest(&group.id, "casey@bank.test").await, 403, "forbidden");
    allow_guests(&t).await;
    let dm = t.ada.create_conversation(&direct_request(&t.grace_id)).await.unwrap();
    assert_problem!(t.ada.invite_guest(&dm.id, "casey@bank.test").await, 403, "forbidden");
    assert_problem!(t.ada.invite_guest(&group.id, "grace@acme.test").await, 409, "account-exists");
    let invitation = t.grace.invite_guest(&group.id, "Casey@Bank.test").await.unwrap();
    assert_eq!(invitation.email, "casey@bank.test");
    assert!(invitation.code.len() == 8 && invitation.code.bytes().all(|b| b.is_ascii_digit()), "{}", invitation.code);
    let token = invitation.invite_url.split_once('#').map(|(_, t)| t.to_owned()).expect("the token after #");

    // The link alone lets nobody in; with the code, an account in the conversation.
    let outsider = Client::new(&t.srv.url);
    assert_problem!(outsider.guest_signup(&taking(&token, &wrong(&invitation.code))).await, 400, "invalid-invitation");
    let login = outsider.guest_signup(&taking(&token, &invitation.code)).await.unwrap();
    assert_eq!((login.user.org_id.as_deref(), login.user.email.as_str()), (None, "casey@bank.test"));
    assert_problem!(outsider.guest_signup(&taking(&token, &invitation.code)).await, 400, "invalid-invitation");
    assert_eq!(t.srv.audit_count("guest.signup", "success").await, 1);
    assert_eq!(t.srv.audit_count("guest.signup", "failure").await, 1);
    let casey = Client::new(&t.srv.url).authenticated(&login.token);
    let listed = casey.list_conversations().await.unwrap().conversations;
    assert_eq!(listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [group.id.as_str()]);
    // In no organisation: she finds none of its people or channels.
    assert_problem!(casey.find_people("").await, 403, "forbidden");
    assert_problem!(casey.list_channels().await, 403, "forbidden");
    let seen = t.ada.get_conversation(&group.id).await.unwrap();
    let member = seen.members.iter().find(|m| m.user_id == login.user.id).expect("the guest is a member");
    assert!(member.external, "marked external wherever they appear");

    // Her device is added by the members' devices and reads what follows.
    let mut devices = std::mem::take(&mut t.devices);
    devices.push(ChatDevice::register(&casey, "Casey's laptop").await.unwrap());
    all_in_group(&mut devices, &group.id).await;
    devices[0].send_text(&group.id, "welcome, Casey", None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let guest_device = devices.last_mut().unwrap();
    loop {
        let events = guest_device.sync().await.unwrap();
        if events.iter().any(|e| matches!(e, ChatEvent::Message { text, .. } if text == "welcome, Casey")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the guest never read the message");
    }

    // Nothing else: no conversations of her own, no channels, no
    // organisation, and nobody adds her anywhere else.
    let own = CreateConversationRequest {
        kind: ConversationKind::Group,
        name: Some("Mine".into()),
        members: Vec::new(),
        encrypted: true,
    };
    assert_problem!(casey.create_conversation(&own).await, 403, "forbidden");
    let channel = CreateConversationRequest { kind: ConversationKind::Channel, name: Some("general".into()), ..own };
    let channel = t.ada.create_conversation(&channel).await.unwrap();
    assert_problem!(casey.join_conversation(&channel.id).await, 404, "not-found");
    assert_problem!(casey.create_org("Casey Co").await, 403, "forbidden");
    assert_problem!(t.ada.create_conversation(&direct_request(&login.user.id)).await, 422, "validation-failed");
}

async fn wrong_codes_spend_a_guest_invitation(engine: Engine) {
    let t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Deal room", &[])).await.unwrap();
    allow_guests(&t).await;
    let invitation = t.ada.invite_guest(&group.id, "casey@bank.test").await.unwrap();
    let token = invitation.invite_url.split_once('#').unwrap().1.to_owned();
    let outsider = Client::new(&t.srv.url);
    for left in (0..5).rev() {
        match outsider.guest_signup(&taking(&token, &wrong(&invitation.code))).await {
            Err(conclave_client::ClientError::Api(problem)) => {
                assert_eq!(problem.status, 400);
                let detail = problem.detail.unwrap_or_default();
                let says = if left > 0 { format!("{left} more tries") } else { "ask for a new invitation".into() };
                assert!(detail.contains(&says), "{detail}");
            }
            other => panic!("a wrong code got {other:?}"),
        }
    }
    // Spent: the right code no longer opens it.
    assert_problem!(outsider.guest_signup(&taking(&token, &invitation.code)).await, 400, "invalid-invitation");
}

/// A guest invited into a second conversation takes that invitation signed
/// in, with its link and code like the first; nobody else can take it for
/// them, and an account that is not a guest is not made one this way.
async fn a_guest_invited_again_takes_the_invitation_signed_in(engine: Engine) {
    let mut t = team(engine).await;
    allow_guests(&t).await;
    let first = t.ada.create_conversation(&group_request("Deal room", &[])).await.unwrap();
    let invitation = t.ada.invite_guest(&first.id, "casey@bank.test").await.unwrap();
    let token = invitation.invite_url.split_once('#').unwrap().1.to_owned();
    let casey = Client::new(&t.srv.url);
    let login = casey.guest_signup(&taking(&token, &invitation.code)).await.unwrap();
    let casey = casey.authenticated(&login.token);
    let dana = Client::new(&t.srv.url);
    let other = t.ada.invite_guest(&first.id, "dana@fund.test").await.unwrap();
    let other_token = other.invite_url.split_once('#').unwrap().1.to_owned();
    let dana_taking = GuestSignupRequest { display_name: "Dana Fund".into(), ..taking(&other_token, &other.code) };
    let dana_login = dana.guest_signup(&dana_taking).await.unwrap();
    let dana = Client::new(&t.srv.url).authenticated(&dana_login.token);

    // Grace invites her into a second group; the address has a guest's account.
    let second = t.grace.create_conversation(&group_request("Closing", &[&t.ada_id])).await.unwrap();
    let again = t.grace.invite_guest(&second.id, "casey@bank.test").await.unwrap();
    let again_token = again.invite_url.split_once('#').unwrap().1.to_owned();
    // Nobody else takes it, however they are signed in: another guest, a member.
    assert_problem!(dana.accept_guest_invitation(&again_token, &again.code).await, 400, "invalid-invitation");
    assert_problem!(t.ada.accept_guest_invitation(&again_token, &again.code).await, 400, "invalid-invitation");
    // Nor does the guest without the code, and wrong codes count.
    match casey.accept_guest_invitation(&again_token, &wrong(&again.code)).await {
        Err(conclave_client::ClientError::Api(problem)) => {
            assert_eq!(problem.status, 400);
            assert!(problem.detail.unwrap_or_default().contains("4 more tries"));
        }
        other => panic!("a wrong code got {other:?}"),
    }
    let joined = casey.accept_guest_invitation(&again_token, &again.code).await.unwrap();
    assert_eq!(joined.id, second.id);
    assert!(joined.members.iter().any(|m| m.user_id == login.user.id && m.external));
    assert_problem!(casey.accept_guest_invitation(&again_token, &again.code).await, 400, "invalid-invitation");
    let mut listed: Vec<String> =
        casey.list_conversations().await.unwrap().conversations.into_iter().map(|c| c.id).collect();
    listed.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "both conversations, nothing else");
    // Already there: a second invitation is refused at once.
    assert_problem!(t.grace.invite_guest(&second.id, "casey@bank.test").await, 409, "conflict");
    assert_eq!(t.srv.audit_count("guest.signup", "success").await, 3);

    // An address invited as a guest whose owner became a member meanwhile
    // is not turned into a guest by the invitation.
    let late = t.ada.invite_guest(&second.id, "frank@acme.test").await.unwrap();
    let late_token = late.invite_url.split_once('#').unwrap().1.to_owned();
    let (frank, _) = t.srv.add_member(&t.ada, &t.org, "frank@acme.test", conclave_proto::OrgRole::Member).await;
    assert_problem!(frank.accept_guest_invitation(&late_token, &late.code).await, 403, "forbidden");

    // Her device is added to the second group and reads what is said there.
    let (ada_laptop, grace_laptop) = (t.devices.remove(0), t.devices.remove(1));
    let mut devices = vec![ada_laptop, grace_laptop];
    devices.push(ChatDevice::register(&casey, "Casey's laptop").await.unwrap());
    all_in_group(&mut devices, &second.id).await;
    devices[1].send_text(&second.id, "the closing is on Friday", None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = devices[2].sync().await.unwrap();
        if events.iter().any(|e| matches!(e, ChatEvent::Message { text, .. } if text == "the closing is on Friday")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the guest never read the message");
    }
}

on_both_engines!(
    a_guest_comes_in_by_link_and_code_and_sees_that_conversation_alone,
    wrong_codes_spend_a_guest_invitation,
    a_guest_invited_again_takes_the_invitation_signed_in
);
