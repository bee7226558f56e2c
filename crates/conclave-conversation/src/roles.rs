//! Who may do what in a conversation: the rules of its kind and of each
//! member's role, as plain functions of both.
//!
//! The rules follow what people know from team messengers: a direct
//! message is fixed between its two people; in a private group any member
//! adds people and admins remove them; an organisation channel is joined
//! freely until an admin locks its membership, after which admins govern
//! it. Nobody removes someone of their own rank or above, and only owners
//! hand out roles.

pub use conclave_proto::conversation::{ConversationKind as Kind, ConversationRole as Role};

/// Whether `by` may add people to the conversation.
pub fn may_add(kind: Kind, locked: bool, by: Role) -> bool {
    match kind {
        Kind::Direct => false,
        Kind::Group => true,
        Kind::Channel => !locked || by >= Role::Admin,
    }
}

/// Whether someone not in the conversation may join it by themselves.
pub fn may_join(kind: Kind, locked: bool) -> bool {
    kind == Kind::Channel && !locked
}

/// Whether `by` may remove a member whose role is `target`.
pub fn may_remove(kind: Kind, by: Role, target: Role) -> bool {
    kind != Kind::Direct && by >= Role::Admin && by > target
}

/// Whether `by` may give roles.
pub fn may_set_roles(kind: Kind, by: Role) -> bool {
    kind != Kind::Direct && by == Role::Owner
}

/// Whether `by` may lock membership, archive, or change the conversation's settings.
pub fn may_govern(kind: Kind, by: Role) -> bool {
    kind != Kind::Direct && by >= Role::Admin
}

/// Whether a member may leave (a direct message is hidden, not left).
pub fn may_leave(kind: Kind) -> bool {
    kind != Kind::Direct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_removes_their_own_rank_or_above() {
        for by in [Role::Member, Role::Admin, Role::Owner] {
            for target in [Role::Member, Role::Admin, Role::Owner] {
                let allowed = may_remove(Kind::Group, by, target);
                assert_eq!(allowed, by >= Role::Admin && by > target, "{by:?} removing {target:?}");
            }
        }
        assert!(!may_remove(Kind::Direct, Role::Owner, Role::Member));
    }

    #[test]
    fn a_locked_channel_is_governed_by_its_admins() {
        assert!(may_add(Kind::Channel, false, Role::Member));
        assert!(!may_add(Kind::Channel, true, Role::Member));
        assert!(may_add(Kind::Channel, true, Role::Admin));
        assert!(may_join(Kind::Channel, false));
        assert!(!may_join(Kind::Channel, true));
        assert!(!may_join(Kind::Group, false), "a private group is joined only by being added");
    }
}
