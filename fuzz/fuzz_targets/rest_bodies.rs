//! Every JSON body the REST API accepts, fed arbitrary bytes: parsing
//! never panics (the server's extractor answers anything else with a
//! problem document).
#![no_main]

use conclave_proto::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<SignupRequest>(data);
    let _ = serde_json::from_slice::<LoginRequest>(data);
    let _ = serde_json::from_slice::<ChangePasswordRequest>(data);
    let _ = serde_json::from_slice::<TotpConfirmRequest>(data);
    let _ = serde_json::from_slice::<CreateAccessTokenRequest>(data);
    let _ = serde_json::from_slice::<CreateOrgRequest>(data);
    let _ = serde_json::from_slice::<InviteMemberRequest>(data);
    let _ = serde_json::from_slice::<UpdateMemberRequest>(data);
    let _ = serde_json::from_slice::<OrgPolicyUpdate>(data);
    let _ = serde_json::from_slice::<CreateMeetingRequest>(data);
    let _ = serde_json::from_slice::<UpdateMeetingRequest>(data);
    let _ = serde_json::from_slice::<JoinMeetingRequest>(data);
    let _ = serde_json::from_slice::<ReportParticipantRequest>(data);
    let _ = serde_json::from_slice::<conversation::CreateConversationRequest>(data);
    let _ = serde_json::from_slice::<conversation::AddMembersRequest>(data);
    let _ = serde_json::from_slice::<conversation::SetConversationRoleRequest>(data);
    let _ = serde_json::from_slice::<conversation::ConversationSettingsUpdate>(data);
    let _ = serde_json::from_slice::<conversation::SendMessageRequest>(data);
    let _ = serde_json::from_slice::<conversation::MarkReadRequest>(data);
    let _ = serde_json::from_slice::<conversation::MuteRequest>(data);
    let _ = serde_json::from_slice::<conversation::LiveCommand>(data);
    let _ = serde_json::from_slice::<conversation::KeyPackageRequest>(data);
    let _ = serde_json::from_slice::<conversation::CommitRequest>(data);
    let _ = serde_json::from_slice::<conversation::InviteGuestRequest>(data);
    let _ = serde_json::from_slice::<conversation::GuestSignupRequest>(data);
    let _ = serde_json::from_slice::<conversation::AcceptGuestInvitationRequest>(data);
    let _ = serde_json::from_slice::<file::StartUploadRequest>(data);
    let _ = serde_json::from_slice::<file::StorageSettings>(data);
    // What a device reads back from the server.
    let _ = serde_json::from_slice::<conversation::EntryPage>(data);
    let _ = serde_json::from_slice::<conversation::InboxPage>(data);
    let _ = serde_json::from_slice::<file::FileStatus>(data);
    // What a device opens: a message's payload, inside the encryption.
    let _ = serde_json::from_slice::<conversation::MessagePayload>(data);
    // A message's text, as another device wrote it.
    if let Ok(text) = std::str::from_utf8(data) {
        let found = markup::mentions(text);
        assert!(found.len() <= markup::MAX_MENTIONS);
    }
});
