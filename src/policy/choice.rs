//! Which agent and model an agent attempt runs on, given the decisions. The engine applies
//! these rules, and `policy explain` and what-if read them, so that neither shows a route as
//! applied when the engine ignored it; when a route is ignored, [`Applied::ignored`] says why.

/// What an agent takes from a route: its adapter, its own `model` and the `models` it accepts
/// (`agents.yaml`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Offer<'a> {
    pub agent: Option<&'a str>,
    pub adapter: Option<&'a str>,
    pub model: Option<&'a str>,
    pub models: &'a [String],
}

impl Offer<'_> {
    /// Whether a route's `model` may replace the agent's own: a model of its `models` (or its
    /// `model`); any model for a client that declares none; none for a `command` agent that
    /// declares none (it runs no model of the catalogue).
    pub fn accepts(&self, model: &str) -> bool {
        if self.models.is_empty() && self.model.is_none() {
            return self.adapter != Some("command");
        }
        self.model == Some(model) || self.models.iter().any(|m| m == model)
    }

    /// The models a route may choose among, when the agent restricts them.
    pub fn restricted(&self) -> Option<Vec<&str>> {
        if self.models.is_empty() && self.model.is_none() {
            return (self.adapter == Some("command")).then(Vec::new);
        }
        let mut all: Vec<&str> = self.model.into_iter().collect();
        all.extend(
            self.models
                .iter()
                .map(String::as_str)
                .filter(|m| Some(*m) != self.model),
        );
        Some(all)
    }
}

/// The agent and model an attempt runs on, and why the route's choice was not applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub agent: Option<String>,
    pub model: Option<String>,
    /// Why the winning route's agent or model was not applied, when it was not.
    pub ignored: Option<String>,
}

/// The engine's rules: the agent is the phase's pinned agent, else the route's; the model is a
/// budget downgrade, else the phase's pinned model, else the route's model when the agent
/// accepts it ([`Offer::accepts`]), else the agent's own.
pub fn apply(
    pinned_agent: Option<&str>,
    pinned_model: Option<&str>,
    downgrade: Option<&str>,
    route_agent: Option<&str>,
    route_model: Option<&str>,
    offer: &Offer<'_>,
) -> Applied {
    let agent = pinned_agent.or(route_agent).map(str::to_string);
    let accepted = route_model.filter(|m| offer.accepts(m));
    let model = downgrade
        .or(pinned_model)
        .or(accepted)
        .or(offer.model)
        .map(str::to_string);
    let mut ignored = Vec::new();
    if let (Some(routed), Some(pinned)) = (route_agent, pinned_agent) {
        if routed != pinned {
            ignored.push(format!("agent `{routed}`: the phase pins agent `{pinned}`"));
        }
    }
    if let Some(routed) = route_model.filter(|m| model.as_deref() != Some(*m)) {
        let why = if let Some(d) = downgrade {
            format!("a budget downgrade chose `{d}`")
        } else if let Some(p) = pinned_model {
            format!("the phase pins model `{p}`")
        } else {
            let name = offer.agent.unwrap_or("the agent");
            match offer.restricted() {
                Some(list) if list.is_empty() => format!(
                    "`{name}` is a `command` agent that declares no model (`model:` or \
                     `models:` in agents.yaml)"
                ),
                Some(list) => format!(
                    "`{name}` accepts only {} (`model`/`models` in agents.yaml)",
                    list.iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "the agent does not accept it".to_string(),
            }
        };
        ignored.push(format!("model `{routed}`: {why}"));
    }
    Applied {
        agent,
        model,
        ignored: (!ignored.is_empty()).then(|| format!("not applied: {}", ignored.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer<'a>(adapter: &'a str, model: Option<&'a str>, models: &'a [String]) -> Offer<'a> {
        Offer {
            agent: Some("a"),
            adapter: Some(adapter),
            model,
            models,
        }
    }

    #[test]
    fn a_route_applies_only_where_the_agent_takes_it() {
        let none: &[String] = &[];
        // A client without a model of its own takes the route's.
        let any = apply(
            None,
            None,
            None,
            None,
            Some("haiku"),
            &offer("claude-code", None, none),
        );
        assert_eq!(any.model.as_deref(), Some("haiku"));
        assert_eq!(any.ignored, None);
        // A command agent that declares nothing runs no model of ours.
        let command = apply(
            None,
            None,
            None,
            None,
            Some("haiku"),
            &offer("command", None, none),
        );
        assert_eq!(command.model, None);
        assert!(command.ignored.unwrap().contains("declares no model"));
        // A command agent's declared list is what routing picks among; its `model` otherwise.
        let list = ["haiku".to_string(), "sonnet".to_string()];
        let routed = apply(
            None,
            None,
            None,
            None,
            Some("haiku"),
            &offer("command", Some("sonnet"), &list),
        );
        assert_eq!(routed.model.as_deref(), Some("haiku"));
        assert_eq!(routed.ignored, None);
        let outside = apply(
            None,
            None,
            None,
            None,
            Some("opus"),
            &offer("command", Some("sonnet"), &list),
        );
        assert_eq!(outside.model.as_deref(), Some("sonnet"));
        assert_eq!(
            outside.ignored.as_deref(),
            Some("not applied: model `opus`: `a` accepts only `sonnet`, `haiku` (`model`/`models` in agents.yaml)")
        );
        // The phase's pins and a downgrade win, and say so.
        let pinned = apply(
            Some("b"),
            Some("opus"),
            None,
            Some("a"),
            Some("haiku"),
            &offer("command", None, &list),
        );
        assert_eq!(
            (pinned.agent.as_deref(), pinned.model.as_deref()),
            (Some("b"), Some("opus"))
        );
        assert_eq!(
            pinned.ignored.as_deref(),
            Some("not applied: agent `a`: the phase pins agent `b`; model `haiku`: the phase pins model `opus`")
        );
        let down = apply(
            None,
            Some("opus"),
            Some("haiku"),
            None,
            Some("sonnet"),
            &offer("codex", None, none),
        );
        assert_eq!(down.model.as_deref(), Some("haiku"));
        assert!(down
            .ignored
            .unwrap()
            .contains("a budget downgrade chose `haiku`"));
    }
}
