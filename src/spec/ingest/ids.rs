//! Ids for what a spec did not name.

use super::*;

/// Ids for what the spec did not name, in reading order, never one the spec uses.
pub(super) fn assign_ids(spec: &mut Spec) {
    let mut used: std::collections::HashSet<String> = spec
        .requirements
        .iter()
        .filter(|r| r.explicit_id)
        .map(|r| r.id.clone())
        .chain(
            spec.criteria
                .iter()
                .filter(|c| c.explicit_id)
                .map(|c| c.id.clone()),
        )
        .collect();
    let next = |prefix: &str, used: &mut std::collections::HashSet<String>| {
        let mut n = 1;
        loop {
            let id = format!("{prefix}-{n:03}");
            if used.insert(id.clone()) {
                return id;
            }
            n += 1;
        }
    };
    for r in spec.requirements.iter_mut().filter(|r| !r.explicit_id) {
        let prefix = match r.kind {
            RequirementKind::Constraint => "CON",
            RequirementKind::Task => "TASK",
            RequirementKind::NonFunctional => "NFR",
            _ => "REQ",
        };
        r.id = next(prefix, &mut used);
    }
    for c in spec.criteria.iter_mut().filter(|c| !c.explicit_id) {
        let prefix = match c.kind {
            CriterionKind::Success => "SC",
            _ => "AC",
        };
        c.id = next(prefix, &mut used);
    }
    for (i, q) in spec.clarifications.iter_mut().enumerate() {
        q.id = format!("Q{}", i + 1);
    }
}
