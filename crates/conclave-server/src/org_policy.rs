//! An organisation's policy as rules: what an update may set, checked as a
//! whole. The API and `conclave admin` both apply updates through here.

use conclave_proto::problem::FieldError;
use conclave_proto::{OrgPolicy, OrgPolicyUpdate, Plan};

/// The settings of a policy update that are out of range, each with why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct InvalidPolicy(pub Vec<FieldError>);

pub const MAX_MEETING_MINUTES: u32 = 24 * 60;
pub const DORMANT_DAYS: std::ops::RangeInclusive<u32> = 7..=3650;
pub const WAITING_ROOM_CAPACITY: std::ops::RangeInclusive<u32> = 1..=5000;
/// A message's edit and delete windows: a minute to a year.
pub const MESSAGE_WINDOW_MINUTES: std::ops::RangeInclusive<u32> = 1..=365 * 24 * 60;
pub const FILE_MIB: std::ops::RangeInclusive<u32> = 1..=conclave_proto::file::MAX_FILE_MIB;

/// Applies `update` to `policy` and checks the result as a whole, reporting
/// every invalid setting at once.
pub fn apply_update(
    mut policy: OrgPolicy,
    update: OrgPolicyUpdate,
    plan: Plan,
    server_regions: &[String],
) -> Result<OrgPolicy, InvalidPolicy> {
    macro_rules! take {
        ($($field:ident),*) => { $(if let Some(v) = update.$field { policy.$field = v; })* };
    }
    take!(
        waiting_room,
        passcode_required,
        chat_allowed,
        cloud_recording_allowed,
        e2ee,
        allowed_regions,
        meeting_time_limit_minutes,
        require_2fa,
        dormant_account_days,
        waiting_room_capacity,
        unencrypted_channels,
        external_conversations,
        history_for_newcomers,
        max_file_mib,
        guest_access,
        message_edit_minutes,
        message_delete_minutes,
        provider_only_sign_in,
        require_phishing_resistant
    );
    validate(&policy, plan, server_regions)?;
    Ok(policy)
}

pub fn validate(policy: &OrgPolicy, plan: Plan, server_regions: &[String]) -> Result<(), InvalidPolicy> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: String| errors.push(FieldError { field: field.to_owned(), message });
    let regions = &policy.allowed_regions.value;
    if regions.is_empty() {
        error("allowed_regions", "must name at least one region".into());
    }
    for region in regions {
        if !server_regions.contains(region) {
            error(
                "allowed_regions",
                format!("unknown region {region:?}; this server has {}", server_regions.join(", ")),
            );
        }
    }
    if regions.iter().enumerate().any(|(i, r)| regions[..i].contains(r)) {
        error("allowed_regions", "lists a region twice".into());
    }
    match (policy.meeting_time_limit_minutes.value, plan.meeting_cap_minutes()) {
        (Some(0), _) => error("meeting_time_limit_minutes", "must be at least 1 minute".into()),
        (Some(m), _) if m > MAX_MEETING_MINUTES => {
            error("meeting_time_limit_minutes", format!("must be at most {MAX_MEETING_MINUTES}"))
        }
        (Some(m), Some(cap)) if m > cap => {
            error("meeting_time_limit_minutes", format!("the {} plan allows at most {cap} minutes", plan.as_str()))
        }
        (None, Some(cap)) => {
            error("meeting_time_limit_minutes", format!("the {} plan limits meetings to {cap} minutes", plan.as_str()))
        }
        _ => {}
    }
    if let Some(days) = policy.dormant_account_days.value {
        if !DORMANT_DAYS.contains(&days) {
            error(
                "dormant_account_days",
                format!("must be between {} and {} days, or null", DORMANT_DAYS.start(), DORMANT_DAYS.end()),
            );
        }
    }
    if !WAITING_ROOM_CAPACITY.contains(&policy.waiting_room_capacity.value) {
        let (low, high) = (WAITING_ROOM_CAPACITY.start(), WAITING_ROOM_CAPACITY.end());
        error("waiting_room_capacity", format!("must be between {low} and {high} people"));
    }
    for (field, window) in [
        ("message_edit_minutes", policy.message_edit_minutes.value),
        ("message_delete_minutes", policy.message_delete_minutes.value),
    ] {
        if window.is_some_and(|m| !MESSAGE_WINDOW_MINUTES.contains(&m)) {
            let (low, high) = (MESSAGE_WINDOW_MINUTES.start(), MESSAGE_WINDOW_MINUTES.end());
            error(field, format!("must be between {low} and {high} minutes, or null for no limit"));
        }
    }
    if !FILE_MIB.contains(&policy.max_file_mib.value) {
        error("max_file_mib", format!("must be between {} and {} MiB", FILE_MIB.start(), FILE_MIB.end()));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidPolicy(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::Setting;

    fn regions() -> Vec<String> {
        vec!["eu".into(), "us".into()]
    }

    #[test]
    fn partial_updates_change_only_what_they_name() {
        let before = OrgPolicy::defaults(Plan::Free, &regions());
        let update = OrgPolicyUpdate { require_2fa: Some(Setting::locked(true)), ..Default::default() };
        let after = apply_update(before.clone(), update, Plan::Free, &regions()).unwrap();
        assert_eq!(after.require_2fa, Setting::locked(true));
        assert_eq!(OrgPolicy { require_2fa: before.require_2fa.clone(), ..after }, before);
    }

    #[test]
    fn free_plan_cannot_lift_its_time_limit_but_a_licensed_one_can() {
        let base = OrgPolicy::defaults(Plan::Free, &regions());
        let lift =
            || OrgPolicyUpdate { meeting_time_limit_minutes: Some(Setting::unlocked(None)), ..Default::default() };
        assert!(apply_update(base.clone(), lift(), Plan::Free, &regions()).is_err());
        let raise =
            OrgPolicyUpdate { meeting_time_limit_minutes: Some(Setting::unlocked(Some(41))), ..Default::default() };
        assert!(apply_update(base.clone(), raise, Plan::Free, &regions()).is_err());
        assert!(apply_update(base, lift(), Plan::Licensed, &regions()).is_ok());
    }

    #[test]
    fn every_invalid_setting_is_reported() {
        let update = OrgPolicyUpdate {
            allowed_regions: Some(Setting::unlocked(vec!["mars".into(), "eu".into(), "eu".into()])),
            dormant_account_days: Some(Setting::unlocked(Some(1))),
            waiting_room_capacity: Some(Setting::unlocked(0)),
            ..Default::default()
        };
        let err =
            apply_update(OrgPolicy::defaults(Plan::Free, &regions()), update, Plan::Free, &regions()).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["allowed_regions", "allowed_regions", "dormant_account_days", "waiting_room_capacity"]);
    }
}
