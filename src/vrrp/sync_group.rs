//! keepalived's vrrp_sync_group across several virtual routers of one node, pure.
//!
//! Owns the rules of reference section 1.5: the group becomes Master only when every member
//! wants Master (a member whose own timer says "take over" waits, see
//! [`Action::WantMaster`]); one member stepping down to Backup takes the Master members with
//! it; one member in Fault puts the others in Fault, and its recovery lets them restart
//! their election. [`react`] reads one member's action and returns the commands for the
//! members; the caller (daemon or simulator) hands them over as [`Input::Group`] and feeds
//! the actions that result back here. Must not hold state of its own: the routers do.
//!
//! [`Input::Group`]: super::input::Input::Group

use super::action::{Action, Reason, State};
use super::input::GroupCommand;
use super::router::VirtualRouter;

/// The commands a member's `action` implies for the group's members (by index in
/// `members`). `member` is the index of the router that emitted it.
pub fn react(
    members: &[&VirtualRouter],
    member: usize,
    action: &Action,
) -> Vec<(usize, GroupCommand)> {
    let others = || (0..members.len()).filter(move |&index| index != member);
    match action {
        // Master together or not at all: go when every member is Master or wants to be.
        Action::WantMaster => {
            let all_want = members
                .iter()
                .all(|router| router.wants_master() || router.state() == State::Master);
            if !all_want {
                return Vec::new();
            }
            (0..members.len())
                .filter(|&index| members[index].wants_master())
                .map(|index| (index, GroupCommand::Master))
                .collect()
        }
        // Moves the group made are not news to the group.
        Action::Transition {
            reason: Reason::SyncGroup,
            ..
        } => Vec::new(),
        Action::Transition {
            from: State::Master,
            to: State::Backup,
            ..
        } => others()
            .filter(|&index| {
                members[index].state() == State::Master || members[index].wants_master()
            })
            .map(|index| (index, GroupCommand::Backup))
            .collect(),
        Action::Transition {
            to: State::Fault, ..
        } => others()
            .filter(|&index| members[index].state() != State::Fault)
            .map(|index| (index, GroupCommand::Fault))
            .collect(),
        Action::Transition {
            from: State::Fault, ..
        } => {
            // Still a member at fault on its own account: the recovered one goes back.
            if others().any(|index| members[index].fault_is_own()) {
                vec![(member, GroupCommand::Fault)]
            } else {
                others()
                    .filter(|&index| members[index].state() == State::Fault)
                    .map(|index| (index, GroupCommand::Recover))
                    .collect()
            }
        }
        _ => Vec::new(),
    }
}
