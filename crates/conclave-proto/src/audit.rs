//! The audit log's vocabulary: what was done ([`AuditAction`]) and how it
//! went ([`AuditOutcome`]), as stored in the log and shown in
//! [`AuditEvent`](crate::AuditEvent)s.
//!
//! An action is named by dot-separated lowercase segments, from the area to
//! the deed (`meeting.host.claim`), words within a segment joined by `_`
//! (`auth.2fa.recovery_codes`). Actions that only read (`org.audit.read`)
//! are logged when refused. Every variant is documented (which also keeps
//! the generated TypeScript union in declaration order). Stored events keep their text forever, so an
//! action is never renamed; a new deed gets a new action.

use crate::string_enum::string_enum;

string_enum! {
    /// What an audit event records.
    pub enum AuditAction {
        /// An account unused past the organisation's cutoff was disabled.
        AccountDormant = "account.dormant",
        /// Two-factor authentication turned off by its owner.
        Auth2faDisable = "auth.2fa.disable",
        /// Two-factor authentication turned on (the first code confirmed).
        Auth2faEnable = "auth.2fa.enable",
        /// New recovery codes issued.
        Auth2faRecoveryCodes = "auth.2fa.recovery_codes",
        /// Two-factor authentication turned off by an operator (`conclave admin`).
        Auth2faReset = "auth.2fa.reset",
        /// An E2EE device registered with its account.
        AuthDeviceRegister = "auth.device.register",
        /// An E2EE device revoked by its account: the server vouches for it no more.
        AuthDeviceRevoke = "auth.device.revoke",
        /// A sign-in, successful or not.
        AuthLogin = "auth.login",
        /// A sign-out.
        AuthLogout = "auth.logout",
        /// A passkey registered, renamed or removed.
        AuthPasskey = "auth.passkey",
        /// A provider identity linked to an existing account at its first sign-in through the provider.
        AuthProviderLink = "auth.provider.link",
        /// A password changed (the account's other sessions signed out).
        AuthPasswordChange = "auth.password.change",
        /// A session signed out from another one.
        AuthSessionRevoke = "auth.session.revoke",
        /// An account created (by invitation, or by open registration).
        AuthSignup = "auth.signup",
        /// A password-reset link was emailed.
        AuthPasswordResetRequest = "auth.password.reset.request",
        /// A new password was set with an emailed link.
        AuthPasswordReset = "auth.password.reset",
        /// A personal access token created.
        AuthTokenCreate = "auth.token.create",
        /// Someone let in from the waiting room.
        MeetingAdmit = "meeting.admit",
        /// Everyone in the waiting room let in.
        MeetingAdmitAll = "meeting.admit_all",
        /// A removed person let back in by the meeting's owner or an organisation admin.
        MeetingBanLift = "meeting.ban.lift",
        /// The meeting's bans listed (logged when refused).
        MeetingBansRead = "meeting.bans.read",
        /// Someone made or unmade co-host.
        MeetingCoHost = "meeting.co_host",
        /// A signaling command the room refused for want of the right to give it.
        MeetingCommand = "meeting.command",
        /// A meeting scheduled or started.
        MeetingCreate = "meeting.create",
        /// A meeting deleted.
        MeetingDelete = "meeting.delete",
        /// Someone in the waiting room turned away.
        MeetingDeny = "meeting.deny",
        /// An end-to-end encryption commit the delivery service refused.
        MeetingE2eeCommit = "meeting.e2ee.commit",
        /// A device refused a commit the server relayed (`e2ee_commit_refused`).
        MeetingE2eeCommitRefused = "meeting.e2ee.commit_refused",
        /// The live meeting ended (time limit, no host left, deleted).
        MeetingEnd = "meeting.end",
        /// A host ended the meeting for everyone.
        MeetingEndForAll = "meeting.end_for_all",
        /// The room made someone host because the host left.
        MeetingHostAssign = "meeting.host.assign",
        /// Someone became host with the meeting's host key.
        MeetingHostClaim = "meeting.host.claim",
        /// The host handed the role to someone else.
        MeetingHostTransfer = "meeting.host.transfer",
        /// A join refused: no meeting matches the link or code and passcode, or the room turned it away.
        MeetingJoin = "meeting.join",
        /// The meeting locked: nobody new may join.
        MeetingLock = "meeting.lock",
        /// Everyone muted by a host or co-host.
        MeetingMuteAll = "meeting.mute_all",
        /// The organisation's policy changed and the live room applied it.
        MeetingPolicy = "meeting.policy",
        /// A meeting read (logged when refused).
        MeetingRead = "meeting.read",
        /// Someone removed from the meeting (and banned from it).
        MeetingRemove = "meeting.remove",
        /// A participant reported another.
        MeetingReport = "meeting.report",
        /// The meeting's link, code and host key replaced.
        MeetingRotate = "meeting.rotate",
        /// A seat taken over by its own account on another device, or by its resume token.
        MeetingSeatTakeover = "meeting.seat.takeover",
        /// A host or co-host changed the live meeting's settings.
        MeetingSettings = "meeting.settings",
        /// A signaling connection refused (unknown, used or expired ticket or resume token).
        MeetingSignal = "meeting.signal",
        /// The meeting went live: its host came in (and any time limit started).
        MeetingStart = "meeting.start",
        /// Participants' activities suspended by the host.
        MeetingSuspendAll = "meeting.suspend_all",
        /// The meeting unlocked.
        MeetingUnlock = "meeting.unlock",
        /// The scheduled meeting's title, time, passcode or settings changed.
        MeetingUpdate = "meeting.update",
        /// The audit log read (logged when refused).
        OrgAuditRead = "org.audit.read",
        /// An organisation created.
        OrgCreate = "org.create",
        /// An invitation revoked.
        OrgInvitationRevoke = "org.invitation.revoke",
        /// The organisation's invitations listed (logged when refused).
        OrgInvitationsList = "org.invitations.list",
        /// Someone invited to join the organisation.
        OrgInvite = "org.invite",
        /// Someone from outside invited into a conversation as a guest.
        GuestInvite = "guest.invite",
        /// A guest took an invitation (or gave a wrong code).
        GuestSignup = "guest.signup",
        /// A member's account turned off.
        OrgMemberDeactivate = "org.member.deactivate",
        /// A member's account turned back on.
        OrgMemberReactivate = "org.member.reactivate",
        /// A member's role changed.
        OrgMemberRole = "org.member.role",
        /// The organisation's members listed (logged when refused).
        OrgMembersList = "org.members.list",
        /// The organisation's plan changed (by an operator).
        OrgPlan = "org.plan",
        /// The organisation's policy read (logged when refused).
        OrgPolicyRead = "org.policy.read",
        /// The organisation's policy changed.
        OrgPolicyUpdate = "org.policy.update",
        /// The organisation read (logged when refused).
        OrgRead = "org.read",
        /// The organisation's reports read (logged when refused).
        OrgReportsRead = "org.reports.read",
        /// Where the organisation's files are stored, read (logged when refused).
        OrgStorageRead = "org.storage.read",
        /// Where the organisation's files are stored changed.
        OrgStorageUpdate = "org.storage.update",
        /// The organisation's call-quality samples read (logged when refused).
        OrgQualityRead = "org.quality.read",
        /// An OpenID provider connected, changed or disconnected.
        OrgIdentityProvider = "org.identity_provider",
        /// The organisation's SCIM token made, replaced or revoked.
        OrgScimToken = "org.scim.token",
        /// A SCIM request with a token no organisation has (logged as a failure).
        ScimAuth = "scim.auth",
        /// An account created (or brought back) by the identity provider.
        ScimUserProvision = "scim.user.provision",
        /// An account's names or address changed by the identity provider.
        ScimUserUpdate = "scim.user.update",
        /// A group created, changed or deleted by the identity provider.
        ScimGroupUpdate = "scim.group.update",
        /// A meeting's link or code found in a public post; its owner warned.
        MeetingAtRisk = "meeting.at_risk",
        /// The sources watched for meetings at risk changed.
        OrgWatchSources = "org.watch_sources",
        /// The first organisation and its owner created with the setup token.
        ServerBootstrap = "server.bootstrap",
    }
}

string_enum! {
    /// How an audited action went.
    pub enum AuditOutcome {
        /// It was done.
        Success = "success",
        /// It was attempted and failed (a wrong password, an unknown meeting).
        Failure = "failure",
        /// It was not allowed (a role, a lock, a throttle).
        Denied = "denied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::testing::{check, words_joined_by};

    /// `area.deed`: at least two dot-separated segments, each snake_case.
    fn is_dotted_snake_case(action: &str) -> bool {
        action.split('.').count() >= 2 && action.split('.').all(|segment| words_joined_by(segment, '_'))
    }

    #[test]
    fn audit_actions_are_dotted_snake_case_and_round_trip() {
        check::<AuditAction>("dot-separated snake_case segments", is_dotted_snake_case);
    }

    #[test]
    fn audit_outcomes_round_trip() {
        check::<AuditOutcome>("one lowercase word", |outcome| outcome.chars().all(|c| c.is_ascii_lowercase()));
    }

    #[test]
    fn the_convention_refuses_what_it_should() {
        assert!(is_dotted_snake_case("auth.2fa.recovery_codes"));
        for wrong in ["login", "auth.Login", "auth..login", "auth.log-in", "auth.login.", "meeting.co__host"] {
            assert!(!is_dotted_snake_case(wrong), "{wrong}");
        }
    }
}
