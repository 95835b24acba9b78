//! The rules of `[[group]]`: sync groups, keepalived's vrrp_sync_group.
//!
//! Owns the cross-checks between groups and instances (known members, one group per
//! instance) and the warnings keepalived users need: a group of one, members with
//! weighted tracks of their own, and members that prefer different nodes (a master-master
//! dual VIP put in one group by mistake). Must not know how groups behave at run time.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;

use super::checks::CheckSummary;
use super::{Checker, Group, Instance};
use crate::config::error::{Problem, Warning};
use crate::config::file::FileGroup;
use crate::config::names;

impl Checker<'_> {
    /// `instance_names` are every instance's name as written (valid or not), so that a
    /// broken instance does not also produce "unknown instance" errors in its group.
    pub(super) fn groups(
        &mut self,
        groups: Option<&Spanned<Vec<Spanned<FileGroup>>>>,
        instance_names: &[String],
        instances: &[Option<Instance>],
        checks: &BTreeMap<String, CheckSummary>,
    ) -> Option<Vec<Group>> {
        let Some(groups) = groups else {
            return Some(Vec::new());
        };
        let mut member_of: HashMap<String, String> = HashMap::new();
        let mut names_seen: Vec<String> = Vec::new();
        let mut result = Vec::new();
        let mut ok = true;
        for (index, group) in groups.get_ref().iter().enumerate() {
            let prefix = format!("group[{index}]");
            let key = |field: &str| format!("{prefix}.{field}");
            let file = group.get_ref();
            let header = group.span();
            let name = self
                .required(&file.name, &header, key("name"))
                .and_then(|name| {
                    let text = name.get_ref();
                    if let Err(why) = names::check_instance_name(text) {
                        self.error(
                            name.span(),
                            key("name"),
                            Problem::GroupName(text.clone(), why),
                        );
                        return None;
                    }
                    if names_seen.contains(text) {
                        self.error(
                            name.span(),
                            key("name"),
                            Problem::DuplicateGroup(text.clone()),
                        );
                        return None;
                    }
                    names_seen.push(text.clone());
                    Some(text.clone())
                });
            let members = self.required(&file.instances, &header, key("instances"));
            let mut member_names = Vec::new();
            if let Some(members) = members {
                if members.get_ref().is_empty() {
                    self.error(members.span(), key("instances"), Problem::EmptyGroup);
                    ok = false;
                }
                for member in members.get_ref() {
                    let text = member.get_ref();
                    if !instance_names.contains(text) {
                        let problem = Problem::UnknownInstance(text.clone());
                        self.error(member.span(), key("instances"), problem);
                        ok = false;
                        continue;
                    }
                    let group_name = name.clone().unwrap_or_else(|| prefix.clone());
                    if let Some(other) = member_of.insert(text.clone(), group_name) {
                        let problem = Problem::InstanceInTwoGroups {
                            instance: text.clone(),
                            group: other,
                        };
                        self.error(member.span(), key("instances"), problem);
                        ok = false;
                        continue;
                    }
                    member_names.push(text.clone());
                }
                self.group_warnings(&member_names, instances, header.clone(), &prefix);
            }
            let tracks = self.tracks(file.track.as_ref(), checks, &prefix);
            let notify = self.notify(file.notify.as_ref(), &prefix);
            match (name, members, tracks, notify) {
                (Some(name), Some(_), Some(tracks), Some(notify)) => result.push(Group {
                    name,
                    instances: member_names,
                    tracks,
                    notify,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(result)
    }

    fn group_warnings(
        &mut self,
        members: &[String],
        instances: &[Option<Instance>],
        span: std::ops::Range<usize>,
        prefix: &str,
    ) {
        if members.len() == 1 {
            self.warn(span.clone(), prefix, Warning::SingleMemberGroup);
        }
        let found: Vec<&Instance> = members
            .iter()
            .filter_map(|name| instances.iter().flatten().find(|i| &i.name == name))
            .collect();
        let mut priorities: Vec<u8> = found.iter().map(|i| i.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        if priorities.len() > 1 {
            let members = found
                .iter()
                .map(|i| format!("{} {}", i.name, i.priority))
                .collect::<Vec<_>>()
                .join(", ");
            self.warn(
                span.clone(),
                format!("{prefix}.instances"),
                Warning::MembersPreferDifferentNodes { members },
            );
        }
        for instance in found {
            if instance.tracks.iter().any(|track| track.weight != 0) {
                let warning = Warning::MemberWeights {
                    instance: instance.name.clone(),
                };
                self.warn(span.clone(), format!("{prefix}.instances"), warning);
            }
        }
    }
}
